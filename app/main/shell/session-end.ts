import type { AgentState } from '../../common/agent-state.js';

/**
 * What the agent does when the operating system ends the session (logoff, restart, shutdown). It
 * never holds the session back, except in the one moment where going away would cost something:
 * the hand-off, while the agent waits for the updater it has just started to confirm that it runs.
 * Then the end is delayed, with a reason Windows shows the user, until the agent leaves that state
 * (it shuts down for the updater, or the hand-off failed and it stays).
 */

export interface SessionEndDecision {
  readonly delay: boolean;
  /** What Windows shows beside the app while it delays the end (ShutdownBlockReasonCreate); null when not delaying. */
  readonly reason: string | null;
}

/** Windows truncates a block reason to MAX_STR_BLOCKREASON (256) characters when it shows it. */
export const HANDOFF_BLOCK_REASON = 'Outpost is handing an update over to its installer. This takes a few seconds.';

export function sessionEndDecision(state: AgentState): SessionEndDecision {
  return state === 'UPDATING_HANDOFF' ? { delay: true, reason: HANDOFF_BLOCK_REASON } : { delay: false, reason: null };
}

/**
 * The session messages: Windows asks first (`query-session-end`, WM_QUERYENDSESSION) and then says
 * it ends (`session-end`, WM_ENDSESSION); macOS and Linux say it once (powerMonitor `shutdown`).
 */
export type SessionSignal = 'query-session-end' | 'session-end' | 'shutdown';

export interface SessionEndResponse {
  /** Call the event's preventDefault: Windows then keeps the session, Electron on macOS/Linux delays it. */
  readonly preventDefault: boolean;
  /** Start the agent's one graceful shutdown. */
  readonly stop: boolean;
}

/**
 * A question (`query-session-end`) never stops the agent: another application may still refuse and
 * the session go on, with the agent gone. The end itself always stops it, delayed or not: after the
 * hand-off the agent was about to stop anyway, and its shutdown waits for the hand-off to finish.
 */
export function sessionEndResponse(signal: SessionSignal, state: AgentState): SessionEndResponse {
  const { delay } = sessionEndDecision(state);
  switch (signal) {
    case 'query-session-end':
      return { preventDefault: delay, stop: false };
    case 'session-end':
      // Windows cannot be held back any more at this point.
      return { preventDefault: false, stop: true };
    case 'shutdown':
      return { preventDefault: delay, stop: true };
  }
}
