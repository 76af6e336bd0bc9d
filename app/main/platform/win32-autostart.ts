import { ErrorCode, OutpostError } from '../../base/errors.js';
import { type AutostartStore, windowsCommandLine } from './autostart.js';
import type { CommandResult, CommandRunner } from './win32.js';

const RUN_KEY = 'Software\\Microsoft\\Windows\\CurrentVersion\\Run';
/** The Run value's name: what Task Manager's Startup tab and Settings list. */
export const RUN_VALUE = 'Outpost';

/**
 * The Run value (HKCU for this user, HKLM for every user) through reg.exe from the system folder:
 * no VBScript (the card's `regedit` needs it, and Windows is switching it off), no native addon.
 * `/reg:64` reads and writes the 64-bit view whatever the caller's bitness (a 32-bit installer,
 * Wine's 32-bit reg.exe). reg.exe is judged by its exit code: 1 from `query` is "no such value".
 */
export function registryRunValue(hive: 'HKCU' | 'HKLM', run: CommandRunner, regExe: () => string): AutostartStore {
  const key = `${hive}\\${RUN_KEY}`;
  const reg = (args: readonly string[], what: string): CommandResult => {
    const result = run(regExe(), [...args, '/reg:64']);
    if (result.error) throw new OutpostError(ErrorCode.AUTOSTART, `Cannot run reg.exe to ${what} ${key}\\${RUN_VALUE}: ${result.error.message}.`, { cause: result.error });
    return result;
  };
  const failed = (what: string, result: CommandResult) =>
    new OutpostError(ErrorCode.AUTOSTART, `reg.exe could not ${what} ${key}\\${RUN_VALUE} (exit ${result.status}): ${(result.stderr || result.stdout).trim()}`, {
      details: { exit: result.status },
    });
  return {
    location: `${key}\\${RUN_VALUE}`,
    read() {
      const result = reg(['query', key, '/v', RUN_VALUE], 'read');
      if (result.status === 1) return null;
      if (result.status !== 0) throw failed('read', result);
      return runValueData(result.stdout);
    },
    write(text) {
      const result = reg(['add', key, '/v', RUN_VALUE, '/t', 'REG_SZ', '/d', text, '/f'], 'write');
      if (result.status !== 0) throw failed('write', result);
    },
    remove() {
      const result = reg(['delete', key, '/v', RUN_VALUE, '/f'], 'remove');
      if (result.status !== 0) throw failed('remove', result);
    },
    render: windowsCommandLine,
  };
}

/** The data of the value from `reg query`'s listing: `    Outpost    REG_SZ    <data>`. */
export function runValueData(listing: string): string | null {
  for (const line of listing.split(/\r?\n/)) {
    const match = /^\s+(\S+)\s+REG_(?:EXPAND_)?SZ\s+(.*)$/.exec(line);
    if (match && match[1]?.toLowerCase() === RUN_VALUE.toLowerCase()) return match[2] ?? '';
  }
  return null;
}
