import type { AgentState } from '../../common/agent-state.js';
import type { StatusData, UpdateStatus } from '../../common/ipc.js';

export interface StatusSources {
  readonly state: AgentState;
  readonly version: string;
  readonly storage: string;
  readonly startedAt: Date;
  readonly now: Date;
  /** The update service's view, when updates are on. */
  readonly updates: { readonly update: UpdateStatus; readonly lastCheck: string | null } | undefined;
}

/** The `outpost status` object (CONTRACT.md), from the pieces that know each part. */
export function statusOf(sources: StatusSources): StatusData {
  return {
    state: sources.state,
    version: sources.version,
    pid: process.pid,
    storage: sources.storage,
    uptime_s: Math.round((sources.now.getTime() - sources.startedAt.getTime()) / 1000),
    last_update_check: sources.updates?.lastCheck ?? null,
    update: sources.updates?.update ?? { offered: null, staged: null, last_error: null, last_download: null },
  };
}
