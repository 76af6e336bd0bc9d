import { parseArgs } from 'node:util';

import { ErrorCode, OutpostError } from '../base/errors.js';

/** Whose login starts the program: this user's, or every user's. */
export type AutostartScope = 'user' | 'machine';

/** What the command line asks for (CONTRACT.md). */
export type Command =
  | { readonly kind: 'run'; readonly force: boolean }
  | { readonly kind: 'status' }
  | { readonly kind: 'diagnostics'; readonly open: boolean }
  | { readonly kind: 'autostart'; readonly enable: boolean; readonly scope: AutostartScope | null }
  | { readonly kind: 'set-enrollment-secret'; readonly file: string }
  | { readonly kind: 'quit' }
  | { readonly kind: 'version' }
  | { readonly kind: 'help' };

export const USAGE = `Usage:
  outpost                      run the agent in the foreground (Ctrl+C or SIGTERM stops it)
  outpost --force              ask a running agent to shut down, then run in its place
  outpost --quit               ask a running agent to shut down, and wait until it has (installers, admins)
  outpost status               print the running agent's state as JSON
  outpost diagnostics [--open] serve the running agent's diagnostics page on loopback and print its
                               one-time URL (--open: open it in the default browser); Ctrl+C stops
  outpost --enable-autostart   start at login (for all users when elevated)
  outpost --disable-autostart  stop starting at login
          [--scope user|machine]  this user's entry or every user's, whatever the elevation
                               (installers say which their installation is)
  outpost --set-enrollment-secret FILE
                               keep the organisation's enrollment secret (read from FILE, - for stdin)
                               for this storage folder (per machine when elevated), as the IPC
                               secret is kept; the agent enrolls with it at a backend that
                               authenticates agents (installers: /ENROLL=FILE)
  outpost --version            print the version
  outpost --help               print this help

Environment:
  OUTPOST_HOME       storage folder (default: per machine when elevated, per user otherwise)
  OUTPOST_LOG_LEVEL  error | warn | info | debug (overrides config.json's log_level)

Exit codes: 0 ok, 1 not running (status, diagnostics), 2 another instance holds the lock, 3 busy updating,
4 authentication failed, 5 timed out, 64 usage, 69 not available, 70 internal error,
73 cannot create storage, 74 autostart entry unwritable, 77 unsafe storage folder, 78 invalid config.`;

/** Throws ERR_USAGE (exit 64) with a sentence saying what was wrong. */
export function parseCommand(argv: readonly string[]): Command {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new OutpostError(ErrorCode.USAGE, (error as Error).message);
  }
  const { values, positionals } = parsed;
  const { scope, 'set-enrollment-secret': enrollmentFile, ...switches } = values;
  const flags = [...Object.entries(switches).filter(([, on]) => on).map(([name]) => `--${name}`), ...(enrollmentFile !== undefined ? ['--set-enrollment-secret'] : [])];
  const words = [...positionals];
  if (words.length > 1 || (words[0] !== undefined && words[0] !== 'status' && words[0] !== 'diagnostics')) {
    throw new OutpostError(ErrorCode.USAGE, `unknown command "${words.join(' ')}"`);
  }
  if (words[0] === 'diagnostics') {
    const others = flags.filter((flag) => flag !== '--open');
    if (others.length > 0) throw new OutpostError(ErrorCode.USAGE, `"diagnostics" takes only --open (got ${others.join(' ')})`);
    return { kind: 'diagnostics', open: values.open === true };
  }
  if (values.open) throw new OutpostError(ErrorCode.USAGE, '--open goes with "diagnostics"');
  const autostart = values['enable-autostart'] || values['disable-autostart'];
  if (scope !== undefined && (!autostart || words.length > 0)) throw new OutpostError(ErrorCode.USAGE, '--scope goes with --enable-autostart or --disable-autostart');
  if (scope !== undefined && scope !== 'user' && scope !== 'machine') throw new OutpostError(ErrorCode.USAGE, `--scope is user or machine (not "${scope}")`);
  if (words[0] === 'status') {
    if (flags.length > 0) throw new OutpostError(ErrorCode.USAGE, `"status" takes no options (got ${flags.join(' ')})`);
    return { kind: 'status' };
  }
  if (flags.length > 1) throw new OutpostError(ErrorCode.USAGE, `use one option at a time (got ${flags.join(' ')})`);
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (values.quit) return { kind: 'quit' };
  if (enrollmentFile !== undefined) {
    if (enrollmentFile === '') throw new OutpostError(ErrorCode.USAGE, '--set-enrollment-secret needs a file (or - for stdin)');
    return { kind: 'set-enrollment-secret', file: enrollmentFile };
  }
  if (autostart) return { kind: 'autostart', enable: values['enable-autostart'] === true, scope: scope ?? null };
  return { kind: 'run', force: values.force === true };
}

/** The flags of `outpost` (CONTRACT.md); the Electron app takes the same. */
const OPTIONS = {
  force: { type: 'boolean' },
  quit: { type: 'boolean' },
  open: { type: 'boolean' },
  version: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
  'enable-autostart': { type: 'boolean' },
  'disable-autostart': { type: 'boolean' },
  scope: { type: 'string' },
  'set-enrollment-secret': { type: 'string' },
} as const;

function parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
}

