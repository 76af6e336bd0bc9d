import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { type AutostartStore, fileAutostart, launchAgentPlist } from './autostart.js';
import { PosixPlatform } from './posix.js';

/** launchd's name for the agent; the packaged app's bundle id is the same (electron-builder appId). */
const LAUNCH_AGENT_LABEL = 'dev.outpost.agent';

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

  /** A LaunchAgent: ~/Library/LaunchAgents for this user, /Library/LaunchAgents for every user. */
  autostart(elevated: boolean): AutostartStore {
    const dir = elevated ? '/Library/LaunchAgents' : path.join(this.env.HOME || os.homedir(), 'Library', 'LaunchAgents');
    return fileAutostart(path.join(dir, `${LAUNCH_AGENT_LABEL}.plist`), (login) => launchAgentPlist(LAUNCH_AGENT_LABEL, login));
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
