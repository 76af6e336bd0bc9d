import { type AutostartStore, windowsCommandLine } from './autostart.js';
import type { RegExe } from './win32-reg.js';

const RUN_KEY = 'Software\\Microsoft\\Windows\\CurrentVersion\\Run';
/** The Run value's name: what Task Manager's Startup tab and Settings list. */
export const RUN_VALUE = 'Outpost';

/** The Run value (HKCU for this user, HKLM for every user). `reg query` exits 1 for "no such value". */
export function registryRunValue(hive: 'HKCU' | 'HKLM', reg: RegExe): AutostartStore {
  const key = `${hive}\\${RUN_KEY}`;
  const value = `${key}\\${RUN_VALUE}`;
  return {
    location: value,
    read() {
      const result = reg.run(['query', key, '/v', RUN_VALUE], `read ${value}`);
      if (result.status === 1) return null;
      if (result.status !== 0) throw reg.failed(`read ${value}`, result);
      return runValueData(result.stdout);
    },
    write(text) {
      const result = reg.run(['add', key, '/v', RUN_VALUE, '/t', 'REG_SZ', '/d', text, '/f'], `write ${value}`);
      if (result.status !== 0) throw reg.failed(`write ${value}`, result);
    },
    remove() {
      const result = reg.run(['delete', key, '/v', RUN_VALUE, '/f'], `remove ${value}`);
      if (result.status !== 0) throw reg.failed(`remove ${value}`, result);
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
