import type { Logger } from '../../base/logger.js';
import type { DiagnosticsApi } from '../../common/diagnostics.js';
import type { ExitCode } from '../../common/exit-codes.js';
import type { StatusData } from '../../common/ipc.js';
import type { Config } from '../core/config-schema.js';
import type { StateMachine } from '../core/state-machine.js';

/** What the shell uses of the agent (core/agent.ts's Agent), and nothing more. */
export interface ShellAgent {
  readonly state: StateMachine;
  readonly log: Logger;
  readonly config: Config;
  status(): StatusData;
  /** The one graceful shutdown. */
  stop(reason: string, exitCode?: ExitCode): Promise<void>;
  /** The diagnostics page's API, served in this process. */
  diagnostics(): DiagnosticsApi;
}
