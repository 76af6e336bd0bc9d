import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { PosixPlatform } from './posix.js';

export class DarwinPlatform extends PosixPlatform {
  readonly name = 'darwin';

  constructor(env: NodeJS.ProcessEnv) {
    super(env, 'macOS Keychain');
  }

  defaultStorageDir(elevated: boolean): string {
    if (elevated) return '/Library/Application Support/Outpost';
    return path.join(this.env.HOME || os.homedir(), 'Library', 'Application Support', 'Outpost');
  }

  openUrlCommand(url: string): { command: string; args: string[] } {
    return { command: '/usr/bin/open', args: [url] };
  }

  processStartTime(pid: number): string | null {
    // macOS has no /proc; ps reads the kernel's p_starttime (to the second, which is enough with the pid).
    try {
      const started = execFileSync('/bin/ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', env: { LC_ALL: 'C' } }).trim();
      return started ? `darwin:${started}` : null;
    } catch {
      return null;
    }
  }
}
