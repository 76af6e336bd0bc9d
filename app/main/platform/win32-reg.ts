import { type ErrorCode, OutpostError } from '../../base/errors.js';
import type { CommandResult, CommandRunner } from './win32.js';

/**
 * The registry through reg.exe from the system folder: no VBScript (the `regedit` package needs it, and
 * Windows is switching it off), no native addon. `/reg:64` reads and writes the 64-bit view whatever
 * the caller's bitness (a 32-bit installer, Wine's 32-bit reg.exe). reg.exe is judged by its exit code,
 * never by its wording (localized): 1 is its every failure, "no such key or value" included.
 */
export interface RegExe {
  /** Runs `reg <args> /reg:64`; throws `code` when reg.exe cannot be started at all. `what`: "read HKCU\...\Run\Outpost". */
  run(args: readonly string[], what: string): CommandResult;
  /** The error of a run that reg.exe refused (its exit code, and what it said). */
  failed(what: string, result: CommandResult): OutpostError;
}

export function regExe(run: CommandRunner, exe: () => string, code: ErrorCode): RegExe {
  return {
    run(args, what) {
      const result = run(exe(), [...args, '/reg:64']);
      if (result.error) throw new OutpostError(code, `Cannot run reg.exe to ${what}: ${result.error.message}.`, { cause: result.error });
      return result;
    },
    failed: (what, result) => new OutpostError(code, `reg.exe could not ${what} (exit ${result.status}): ${(result.stderr || result.stdout).trim()}`, { details: { exit: result.status } }),
  };
}
