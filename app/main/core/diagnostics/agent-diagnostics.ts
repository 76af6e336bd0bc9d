import os from 'node:os';
import path from 'node:path';
import { readRecord } from '../../../base/durable-file.js';
import { LOG_FILE_NAME } from '../../../base/logger.js';
import { redactSecrets } from '../../../base/redact.js';
import type { StoragePaths, UpdatePaths } from '../../../base/storage-layout.js';
import { type JobJournal, readJob, readJournal, readLastUpdate } from '../../../base/update-records.js';
import {
  type ActionResult,
  type DiagnosticsApi,
  type DiagnosticsBundle,
  type DiagnosticsView,
  LOG_TAIL_LINES,
  type ReadParams,
  type UpdatePhase,
} from '../../../common/diagnostics.js';
import { DIAGNOSTICS_LOG_BYTES, type UpdateStatus } from '../../../common/ipc.js';
import { LockRecord } from '../../../common/process-identity.js';
import { FailedVersions, type LastUpdate, type StepEntry, type UpdaterJob } from '../../../common/update-files.js';
import type { ShellHooks } from '../agent.js';
import type { StateChange, StateMachine } from '../state-machine.js';
import { askForCheck, type CheckControl } from '../update/check-request.js';
import type { CheckResult } from '../update/update-service.js';
import { readLogTail } from './log-tail.js';

/** What the page is shown of the update service, when updates are on. */
export interface UpdateSource extends CheckControl {
  status(): {
    update: UpdateStatus;
    lastCheck: string | null;
    lastResult: CheckResult | null;
  };
}

export interface AgentDiagnosticsOptions {
  readonly shell: ShellHooks;
  readonly state: StateMachine;
  readonly version: string;
  readonly startedAt: Date;
  readonly paths: StoragePaths;
  readonly channel: string;
  readonly now: () => Date;
  readonly updates: () => UpdateSource | undefined;
  readonly reportsQueued: () => number;
  /** The config as loaded, for the support bundle (its secrets are taken out there). */
  readonly config: () => unknown;
}

/** How far back the download speed is measured. */
const SPEED_WINDOW_MS = 5_000;
/** The most log a support bundle carries (the newest part). */
const BUNDLE_LOG_BYTES = 512 * 1024;

interface Sample {
  readonly at: number;
  readonly bytes: number;
}

/**
 * The agent's side of the diagnostics page: builds the view from the pieces that know each part
 * (state machine, lock file, update service and its records, report buffer, log file). The desktop
 * app calls it in-process; `outpost diagnostics` reaches it over the IPC (`diagnostics`,
 * `diagnostics_bundle`). Reads files only when asked: with no page open it costs one listener.
 */
export class AgentDiagnostics implements DiagnosticsApi {
  readonly #options: AgentDiagnosticsOptions;
  readonly #unsubscribe: () => void;
  #progress: { bytes: number; total: number; percent: number } | null = null;
  #samples: Sample[] = [];

  constructor(options: AgentDiagnosticsOptions) {
    this.#options = options;
    this.#unsubscribe = options.state.subscribe((change) => this.#onChange(change));
  }

  dispose(): void {
    this.#unsubscribe();
  }

  async read(params: ReadParams): Promise<DiagnosticsView> {
    return this.#view(params, LOG_TAIL_LINES, DIAGNOSTICS_LOG_BYTES);
  }

  async checkNow(): Promise<ActionResult> {
    const answer = askForCheck(this.#options.updates());
    answer.start?.();
    return { ok: answer.ok, message: answer.message };
  }

  async openLogFolder(): Promise<ActionResult> {
    const { openFolder } = this.#options.shell;
    const dir = this.#options.paths.logs;
    if (!openFolder) return { ok: false, message: `this agent runs without a desktop; its logs are in ${dir}` };
    await openFolder(dir);
    return { ok: true, message: `opened ${dir}` };
  }

  async bundle(): Promise<DiagnosticsBundle> {
    const { paths, version, now } = this.#options;
    const job = lastJob(paths.updates);
    const view = this.#view({ log_after: null }, Number.MAX_SAFE_INTEGER, BUNDLE_LOG_BYTES, job);
    const contents = {
      product: 'Outpost',
      generated_at: now().toISOString(),
      system: { os: os.type(), release: os.release(), arch: os.arch(), node: process.versions.node },
      state: { ...view, log: undefined },
      config: this.#options.config(),
      last_job: job && { job: job.handedOver, ended: job.ended, journal: job.journal },
      log: view.log.lines.map((line) => `[${line.at}] [${line.level}] ${line.text}`),
    };
    const stamp = now().toISOString().replace(/[:.]/g, '-');
    // Config values (backend URLs) and log lines may hold credentials: the whole text goes through the redaction.
    return { file_name: `outpost-diagnostics-${version}-${stamp}.json`, text: redactSecrets(JSON.stringify(contents, null, 2)) };
  }

  #view(params: ReadParams, maxLines: number, maxBytes: number, job = lastJob(this.#options.paths.updates)): DiagnosticsView {
    const { state, paths, shell, version, startedAt, now } = this.#options;
    const at = now();
    const updates = this.#options.updates();
    const status = updates?.status();
    const lock = readRecord(paths.lock, LockRecord);
    return {
      at: at.toISOString(),
      agent: {
        state: state.state,
        state_since: state.since.toISOString(),
        version,
        pid: process.pid,
        uptime_s: Math.max(0, Math.round((at.getTime() - startedAt.getTime()) / 1000)),
        storage: paths.root,
        logs: paths.logs,
        shell: shell.kind,
      },
      lock: lock && { pid: lock.pid, version: lock.version, acquired_at: lock.acquired_at, heartbeat_at: lock.heartbeat },
      update: {
        enabled: updates !== undefined,
        channel: this.#options.channel,
        last_check: status?.lastCheck ?? null,
        last_result: status?.lastResult ?? null,
        offered: status?.update.offered ?? null,
        staged: status?.update.staged ?? null,
        last_error: status?.update.last_error ?? null,
        last_download: status?.update.last_download ?? null,
        progress: this.#progress && { ...this.#progress, bytes_per_s: this.#speed() },
        held_back: Object.entries(readRecord(paths.updates.failedVersions, FailedVersions) ?? {}).map(([held, entry]) => ({ version: held, rollbacks: entry.count, last: entry.last })),
        last_job: jobView(job),
      },
      reports: { queued: this.#options.reportsQueued() },
      log: readLogTail(path.join(paths.logs, LOG_FILE_NAME), params.log_after, { maxBytes, maxLines }),
    };
  }

  #onChange(change: StateChange): void {
    if (change.progress) {
      const at = change.at.getTime();
      this.#progress = { bytes: change.progress.bytes, total: change.progress.total, percent: change.progress.percent };
      this.#samples = [...this.#samples.filter((sample) => at - sample.at <= SPEED_WINDOW_MS), { at, bytes: change.progress.bytes }];
      return;
    }
    if (change.to !== 'UPDATING_DOWNLOADING') {
      this.#progress = null;
      this.#samples = [];
    }
  }

  #speed(): number | null {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.at - first.at < 500) return null;
    return Math.round(((last.bytes - first.bytes) * 1000) / (last.at - first.at));
  }
}

interface LastJob {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  /** job.json, while the job runs or until the next agent has cleaned up after it. */
  readonly handedOver: UpdaterJob | null;
  /** last-update.json, once the job has ended. */
  readonly ended: LastUpdate | null;
  readonly journal: JobJournal;
}

/**
 * The last job, from what is left of it: job.json while it runs (the next agent removes it once the
 * job has ended), then last-update.json; its journal stays, as the record of what happened.
 */
function lastJob(updates: UpdatePaths): LastJob | null {
  const handedOver = readJob(updates);
  const last = readLastUpdate(updates);
  if (handedOver) {
    const { job_id: id, old_version: from, new_version: to } = handedOver;
    return { id, from, to, handedOver, ended: last?.job_id === id ? last : null, journal: readJournal(updates.journal(id)) };
  }
  if (last) return { id: last.job_id, from: last.from, to: last.to, handedOver: null, ended: last, journal: readJournal(updates.journal(last.job_id)) };
  return null;
}

/** The last job as the page shows it: its versions, its outcome once it has one, its phases. */
function jobView(job: LastJob | null): DiagnosticsView['update']['last_job'] {
  if (!job) return null;
  const { journal, ended } = job;
  return {
    job_id: job.id,
    from: job.from,
    to: job.to,
    outcome: journal.outcome?.outcome ?? ended?.outcome ?? null,
    reason: journal.outcome?.reason ?? ended?.reason ?? null,
    phases: phasesOf(journal.steps),
  };
}

/** The journal's begin/end/fail entries, one phase per step taken (a step taken twice, on a retry, twice). */
export function phasesOf(steps: readonly StepEntry[]): UpdatePhase[] {
  const phases: UpdatePhase[] = [];
  for (const entry of steps) {
    if (entry.phase === 'begin') {
      phases.push({ step: entry.step, result: 'running', began_at: entry.at, ms: null, detail: null });
      continue;
    }
    const index = phases.findLastIndex((phase) => phase.step === entry.step && phase.result === 'running');
    const open = phases[index];
    if (!open) continue;
    const detail = entry.detail ? Object.entries(entry.detail).map(([key, value]) => `${key}: ${String(value)}`).join(', ') : null;
    phases[index] = { ...open, result: entry.phase === 'end' ? 'ok' : 'failed', ms: Math.max(0, Date.parse(entry.at) - Date.parse(open.began_at)), detail };
  }
  return phases;
}
