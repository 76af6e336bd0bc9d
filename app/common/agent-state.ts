/**
 * The agent's states, shared by the main process, the preload API and the diagnostics page.
 * The legal transitions between them live in app/main/core/state-machine.ts.
 */
export const AGENT_STATES = [
  'STARTING',
  'IDLE',
  'CHECKING_UPDATE',
  'UPDATING_DOWNLOADING',
  'UPDATING_VERIFYING',
  'UPDATING_STAGING',
  'UPDATING_HANDOFF',
  'FORCE_RESTARTING',
  'SHUTTING_DOWN',
] as const;

export type AgentState = (typeof AGENT_STATES)[number];

/** A state in which the agent is changing its own installation and must not be interrupted. */
export function isUpdatingState(state: AgentState): boolean {
  return state.startsWith('UPDATING_');
}
