import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type AutostartStore, desktopEntry, fileAutostart } from './autostart.js';
import { PosixPlatform } from './posix.js';

export class LinuxPlatform extends PosixPlatform {
  readonly name = 'linux';
  readonly #bootId: string;

  constructor(env: NodeJS.ProcessEnv) {
    super(env, 'Secret Service');
    // Start times are counted from boot; the boot id tells one boot from the next.
    this.#bootId = readOrEmpty('/proc/sys/kernel/random/boot_id').trim();
  }

  defaultStorageDir(elevated: boolean): string {
    if (elevated) return '/var/lib/outpost';
    const stateHome = this.env.XDG_STATE_HOME || path.join(this.env.HOME || os.homedir(), '.local', 'state');
    return path.join(stateHome, 'outpost');
  }

  override isProcessAlive(pid: number): boolean {
    const stat = readProcStat(pid);
    // A zombie has exited; only its parent has not collected it yet.
    if (stat) return stat.state !== 'Z' && stat.state !== 'X';
    return super.isProcessAlive(pid);
  }

  openUrlCommand(url: string): { command: string; args: string[] } {
    return { command: 'xdg-open', args: [url] };
  }

  /** `$XDG_CONFIG_HOME/autostart` for this user; for all users, the first of `$XDG_CONFIG_DIRS` (default /etc/xdg). */
  autostart(elevated: boolean): AutostartStore {
    const home = this.env.XDG_CONFIG_HOME || path.join(this.env.HOME || os.homedir(), '.config');
    const system = (this.env.XDG_CONFIG_DIRS ?? '').split(':').find((dir) => path.isAbsolute(dir)) ?? '/etc/xdg';
    return fileAutostart(path.join(elevated ? system : home, 'autostart', 'outpost.desktop'), desktopEntry);
  }

  processStartTime(pid: number): string | null {
    const stat = readProcStat(pid);
    return stat ? `linux:${this.#bootId}:${stat.startTicks}` : null;
  }
}

/** /proc/<pid>/stat: the command name may hold spaces and parentheses, so split after the last ')'. */
function readProcStat(pid: number): { state: string; startTicks: string } | null {
  const text = readOrEmpty(`/proc/${pid}/stat`);
  const end = text.lastIndexOf(')');
  if (end < 0) return null;
  const fields = text.slice(end + 2).split(' ');
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  const state = fields[0];
  const startTicks = fields[19];
  return state && startTicks ? { state, startTicks } : null;
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
