import type { LogLevel } from '../base/logger.js';
import type { AgentOptions, ShellHooks } from './core/agent.js';
import type { Command } from './core/update/handoff.js';
import type { Installation } from './installation.js';
import type { Platform } from './platform/index.js';

/** The process a shell runs in, as Node and Electron both describe it. */
export interface Host {
  readonly execPath: string;
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /**
   * What the executable runs, when it is not the program itself: the script of `node <script>`, the
   * folder of an unpackaged `electron <folder>` (argv[1] in both); null for a packaged executable (the
   * desktop app, a single executable), whose argv[0] is the program.
   */
  readonly script: string | null;
}

export interface StartRequest {
  readonly host: Host;
  readonly platform: Platform;
  readonly shell: ShellHooks;
  /** `--force`: how long to wait for the old agent's lock. */
  readonly waitForLockMs: number;
  readonly stderrLogLevel: LogLevel | false;
}

/**
 * The one way either shell builds the agent's options (DESIGN.md, "Two shells, one core"): the
 * installation record says what is installed, where the updater is and what to trust; the host says
 * how this very program is started again, so that the updater launches the new version the same way.
 * Nothing else differs between `outpost` and the desktop app.
 */
export function agentOptions(installation: Installation, request: StartRequest): AgentOptions {
  return {
    platform: request.platform,
    env: request.host.env,
    version: installation.version,
    installDir: installation.dir,
    trustedRootFile: installation.trustedRootFile,
    defaultConfig: installation.defaultConfig,
    updater: installation.updater,
    launch: selfLaunch(request.host),
    shell: request.shell,
    now: () => new Date(),
    stderrLogLevel: request.stderrLogLevel,
    waitForLockMs: request.waitForLockMs,
  };
}

/**
 * How to start this program again, with no arguments: `node <script>` for the command, the app's
 * executable for a packaged desktop app, `electron <folder>` for an unpackaged one. The same command
 * starts whatever version is installed by then.
 */
export function selfLaunch(host: Host): Command {
  return { command: host.execPath, args: host.script === null ? [] : [host.script] };
}

/** The command-line arguments after the program (and its script or folder), as `parseCommand` takes them. */
export function userArguments(host: Host): string[] {
  return host.argv.slice(selfLaunch(host).args.length + 1);
}
