import { ErrorCode, isOutpostError, type OutpostError } from '../../base/errors.js';
import { ExitCode } from '../../common/exit-codes.js';
import type { Reply } from '../../common/ipc.js';
import type { AgentClient } from '../core/agent-client.js';

/**
 * A plain launch of the desktop app (a user double-clicking its shortcut, the login item) first
 * asks the agent of the same storage folder, over the authenticated IPC, to show its diagnostics
 * window. The other commands (`--version`, `status`, `--force`...) are the `outpost` command's own
 * (app/main/commands.ts).
 */

/** Short: a live agent answers at once, and a user is waiting for a window. */
export const SHOW_DIAGNOSTICS_TIMEOUT_MS = 3_000;

/** What asking the running agent came to. */
export type RunningAgentAnswer =
  | { readonly kind: 'reply'; readonly reply: Reply }
  | { readonly kind: 'not_running' }
  | { readonly kind: 'failed'; readonly error: OutpostError };

export type LaunchOutcome =
  /** No agent runs here: this launch becomes it. */
  | { readonly kind: 'start' }
  /** Another agent runs: say what happened and exit. */
  | { readonly kind: 'exit'; readonly code: ExitCode; readonly message: string };

export function secondLaunchOutcome(answer: RunningAgentAnswer): LaunchOutcome {
  switch (answer.kind) {
    case 'not_running':
      return { kind: 'start' };
    case 'failed':
      // It answers the endpoint but not the question (a foreign secret, a stuck or a different agent): leave it alone.
      return { kind: 'exit', code: answer.error.exitCode, message: answer.error.message };
    case 'reply':
      return answeredOutcome(answer.reply);
  }
}

function answeredOutcome(reply: Reply): LaunchOutcome {
  if (reply.status === 'ok') return { kind: 'exit', code: ExitCode.OK, message: 'the running agent is showing its diagnostics window' };
  // A headless agent (`outpost`) has no window to show, and says what to run instead (not_available); an older one does not know the command (bad_request).
  const why = reply.message ? `: ${reply.message}` : '';
  return { kind: 'exit', code: ExitCode.LOCK_HELD, message: `another Outpost agent holds the lock and did not show a window (${reply.status}${why})` };
}

/** Asks, and turns "nothing listens" into an answer; a failure that is not an OutpostError is a bug, and thrown. */
export async function askToShowDiagnostics(client: AgentClient): Promise<RunningAgentAnswer> {
  try {
    return { kind: 'reply', reply: await client.send('show_diagnostics', SHOW_DIAGNOSTICS_TIMEOUT_MS) };
  } catch (error) {
    if (isOutpostError(error, ErrorCode.IPC_NOT_RUNNING)) return { kind: 'not_running' };
    if (isOutpostError(error)) return { kind: 'failed', error };
    throw error;
  }
}
