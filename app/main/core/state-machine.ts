import type { AgentState } from '../../common/agent-state.js';
import type { Logger } from '../../base/logger.js';

/**
 * Every legal move of the agent. Anything else is a programming error: it is logged and refused,
 * never carried out. SHUTTING_DOWN is reachable from everywhere because a signal, a logoff or a
 * lost lock can arrive at any moment; it is final.
 */
export const TRANSITIONS: Readonly<Record<AgentState, readonly AgentState[]>> = {
  STARTING: ['IDLE', 'SHUTTING_DOWN'],
  IDLE: ['CHECKING_UPDATE', 'FORCE_RESTARTING', 'SHUTTING_DOWN'],
  // Straight to the hand-off when the version found is already staged (downloaded before a restart).
  CHECKING_UPDATE: ['IDLE', 'UPDATING_DOWNLOADING', 'UPDATING_HANDOFF', 'FORCE_RESTARTING', 'SHUTTING_DOWN'],
  UPDATING_DOWNLOADING: ['UPDATING_VERIFYING', 'IDLE', 'SHUTTING_DOWN'],
  UPDATING_VERIFYING: ['UPDATING_STAGING', 'IDLE', 'SHUTTING_DOWN'],
  UPDATING_STAGING: ['UPDATING_HANDOFF', 'IDLE', 'SHUTTING_DOWN'],
  UPDATING_HANDOFF: ['SHUTTING_DOWN', 'IDLE'],
  FORCE_RESTARTING: ['SHUTTING_DOWN'],
  SHUTTING_DOWN: [],
};

export function isLegalTransition(from: AgentState, to: AgentState): boolean {
  return TRANSITIONS[from].includes(to);
}

export interface StateChange {
  readonly from: AgentState;
  readonly to: AgentState;
  readonly reason: string;
  readonly at: Date;
  /** Set on progress events within a state (a download): from === to. */
  readonly progress?: Progress;
}

export interface Progress {
  readonly bytes: number;
  readonly total: number;
  readonly percent: number;
}

export type StateListener = (change: StateChange) => void;

export class StateMachine {
  #state: AgentState = 'STARTING';
  #since: Date;
  readonly #listeners = new Set<StateListener>();
  readonly #log: Logger;
  readonly #now: () => Date;

  constructor(log: Logger, now: () => Date) {
    this.#log = log;
    this.#now = now;
    this.#since = now();
  }

  get state(): AgentState {
    return this.#state;
  }

  get since(): Date {
    return this.#since;
  }

  /**
   * The one way the state changes. Returns false (and logs an error) for an illegal move, which
   * leaves the state as it was; listeners hear of legal moves only.
   */
  setState(to: AgentState, reason: string): boolean {
    const from = this.#state;
    if (!isLegalTransition(from, to)) {
      this.#log.error(`illegal state transition ${from} -> ${to} refused`, { reason });
      return false;
    }
    const at = this.#now();
    this.#state = to;
    this.#since = at;
    this.#log.info(`state ${from} -> ${to}: ${reason}`);
    this.#notify({ from, to, reason, at });
    return true;
  }

  /** Progress of the work of the current state (logged, and heard by listeners: the diagnostics window). */
  progress(progress: Progress): void {
    const state = this.#state;
    this.#log.info(`${state}: ${progress.percent}% (${progress.bytes} of ${progress.total} bytes)`);
    this.#notify({ from: state, to: state, reason: 'progress', at: this.#now(), progress });
  }

  #notify(change: StateChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        this.#log.error('a state listener threw; the others still ran', { error: String(error) });
      }
    }
  }

  /** Returns the function that unsubscribes. */
  subscribe(listener: StateListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

