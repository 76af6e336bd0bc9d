import { describeError } from '../base/errors.js';
import type { AutostartStatus } from '../common/cli-output.js';
import { type AutostartChange, disableAutostart, enableAutostart, type LoginCommand } from './platform/autostart.js';
import type { AutostartScope } from './cli.js';
import type { Platform } from './platform/index.js';


/**
 * `outpost --enable-autostart` / `--disable-autostart`: this user's entry, or every user's when
 * elevated, starting `login` (this program, as it was started: the installed executable, or
 * `node <script>`). `--scope` says whose whatever the elevation: an administrator who installs for
 * themselves wants their own entry, not one for every user pointing into their profile.
 * Idempotent; returns the sentence that says what changed.
 */
export function setAutostart(platform: Platform, enable: boolean, login: LoginCommand, scope: AutostartScope | null = null): string {
  const machine = scope === null ? platform.isElevated() : scope === 'machine';
  const store = platform.autostart(machine);
  const change = enable ? enableAutostart(store, login) : disableAutostart(store);
  return autostartSentence(change, machine ? 'every user of this machine' : 'this user', store.location, [login.command, ...login.args].join(' '));
}

/** Never throws: `outpost status` answers for the agent even when the entry cannot be read (it says why on stderr). */
export function autostartStatus(platform: Platform): AutostartStatus {
  const elevated = platform.isElevated();
  const store = platform.autostart(elevated);
  const scope = elevated ? 'machine' : 'user';
  try {
    return { enabled: store.read() !== null, location: store.location, scope };
  } catch (error) {
    process.stderr.write(`outpost: ${describeError(error)}\n`);
    return { enabled: null, location: store.location, scope };
  }
}

function autostartSentence(change: AutostartChange, who: string, location: string, command: string): string {
  switch (change) {
    case 'created':
      return `autostart enabled for ${who}: ${location} starts ${command} at login`;
    case 'updated':
      return `autostart updated for ${who}: ${location} now starts ${command} at login`;
    case 'unchanged':
      return `autostart was already enabled for ${who} (${location}); nothing changed`;
    case 'removed':
      return `autostart disabled for ${who}: removed ${location}`;
    case 'absent':
      return `autostart was not enabled for ${who} (there is no ${location}); nothing changed`;
  }
}
