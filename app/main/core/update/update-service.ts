import type { AxiosInstance } from 'axios';
import { describeError, ErrorCode, isOutpostError, OutpostError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';
import type { UpdatePaths } from '../../../base/storage-layout.js';
import type { ReportCode } from '../../../common/codes.js';
import type { UpdateStatus } from '../../../common/ipc.js';
import type { PushMessage } from '../../../common/push.js';
import type { BackendCredentials } from '../backend/agent-credentials.js';
import { PushClient } from '../backend/push-client.js';
import type { UpdateSettings } from '../config-schema.js';
import type { StateMachine } from '../state-machine.js';
import { Feed } from './feed.js';
import { PipelineStopped, type TestHold, UpdatePipeline } from './update-pipeline.js';

export interface UpdateServiceOptions {
  readonly state: StateMachine;
  readonly log: Logger;
  readonly updates: UpdatePaths;
  readonly settings: UpdateSettings;
  readonly backend: { readonly url: string; readonly ws_url: string };
  readonly trustedRootFile: string;
  /** The running version and where it is installed (unchanged files are taken from there). */
  readonly running: string;
  readonly installDir: string;
  readonly agentId: string;
  readonly http: AxiosInstance;
  /** The CAs the push channel trusts (the organisation's added); else Node's defaults. */
  readonly ca?: readonly string[];
  /** The agent's token for the push channel at a backend that authenticates agents. */
  readonly credentials?: BackendCredentials;
  /** The agent's error reporter (never rejects). */
  readonly report: (code: ReportCode, message: string, context?: Record<string, string | number | boolean | null>) => Promise<void>;
  /** Sends buffered error reports; runs on the poll timer. */
  readonly flushReports: () => Promise<unknown>;
  readonly now: () => Date;
  readonly random: () => number;
  readonly requestTimeoutMs?: number;
  /** See UpdatePipelineOptions.handOff. */
  readonly handOff?: (version: string, stagedDir: string) => Promise<void>;
  /** Development builds only (TestSwitch HOLD_STATE): stay in a state until released, so that a test can act (`--force`, SIGKILL) while the agent really is in it. */
  readonly testHold?: TestHold;
}

type Trigger = 'start' | 'poll' | 'push' | 'reconnect' | 'retry' | 'request';

/**
 * When the agent checks for updates: at start, on the poll timer, on a push, on request (IPC). One
 * check at a time (UpdatePipeline does the work). A push that arrives while a check runs is not lost:
 * when it names a newer feed than the check read (or the check had not read it yet), exactly one more
 * check follows. A failure reports, returns to IDLE and retries with backoff.
 */
export class UpdateService {
  readonly #options: UpdateServiceOptions;
  readonly #pipeline: UpdatePipeline;
  readonly #feed: Feed;
  readonly #push: PushClient;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** The highest feed version pushed while a check ran (null: none). */
  #pushedDuringRun: number | null = null;
  #failures = 0;
  #disposed = false;
  readonly #abort = new AbortController();
  #lastError: UpdateStatus['last_error'] = null;
  #lastCheck: Date | null = null;
  #lastResult: CheckResult | null = null;

  constructor(options: UpdateServiceOptions) {
    this.#options = options;
    this.#feed = new Feed({
      baseUrl: new URL('feed/', withSlash(options.backend.url)).toString(),
      cacheDir: options.updates.metadata,
      trustedRootFile: options.trustedRootFile,
      http: options.http,
      timeoutMs: options.requestTimeoutMs ?? 30_000,
      log: options.log.child('feed'),
    });
    this.#pipeline = new UpdatePipeline({
      state: options.state,
      log: options.log,
      updates: options.updates,
      settings: options.settings,
      feed: this.#feed,
      running: options.running,
      installDir: options.installDir,
      agentId: options.agentId,
      http: options.http,
      now: options.now,
      signal: this.#abort.signal,
      ...(options.handOff && { handOff: options.handOff }),
      ...(options.testHold && { testHold: options.testHold }),
    });
    this.#push = new PushClient({
      url: options.backend.ws_url,
      log: options.log.child('push'),
      onPush: (m) => this.#onPush(m),
      onReconnect: () => {
        options.log.info('push channel back: checking once for a release published while it was down');
        this.trigger('reconnect');
      },
      reconnectWindowMs: options.settings.reconnect_window_s * 1000,
      random: options.random,
      ...(options.ca && { ca: options.ca }),
      ...(options.credentials && { credentials: options.credentials }),
    });
  }

  start(): void {
    this.#push.start();
    this.trigger('start');
  }

  dispose(): void {
    this.#disposed = true;
    this.#abort.abort();
    clearTimeout(this.#timer);
    this.#push.close();
  }

  /** Whether a check runs now (a request then starts none; a push queues one: see #onPush). */
  get checking(): boolean {
    return this.#running !== undefined;
  }

  /** Resolves when the current check (if any) has finished: shutdown waits for a consistent disk. */
  async idle(): Promise<void> {
    await this.#running;
  }

  status(): { update: UpdateStatus; lastCheck: string | null; lastResult: CheckResult | null } {
    const { offered, staged, blocked, lastDownload } = this.#pipeline.status;
    return { update: { offered, staged, last_error: this.#lastError ?? blocked, last_download: lastDownload }, lastCheck: this.#lastCheck?.toISOString() ?? null, lastResult: this.#lastResult };
  }

  /** Checks now, unless a check is already under way (then a push may queue one more: see #onPush). */
  trigger(source: Trigger): void {
    if (this.#disposed) return;
    if (this.#running) {
      this.#options.log.info(`update check (${source}) not started: one is already running`);
      return;
    }
    clearTimeout(this.#timer);
    this.#pushedDuringRun = null;
    this.#running = this.#run(source).finally(() => {
      this.#running = undefined;
      this.#afterRun();
    });
  }

  #onPush(message: PushMessage): void {
    this.#options.log.info(`push: ${message.type} (feed version ${message.feed_version})`);
    if (this.#running) {
      this.#pushedDuringRun = Math.max(this.#pushedDuringRun ?? -1, message.feed_version);
      this.#options.log.info(`a check is running; the push is kept, and checked after it if the check read an older feed`);
      return;
    }
    this.trigger('push');
  }

  /** One more check for a push the last one may have missed, or the next one on the timer. */
  #afterRun(): void {
    if (this.#disposed) return;
    const pushed = this.#pushedDuringRun;
    this.#pushedDuringRun = null;
    const seen = pushed === null ? null : this.#feed.timestampVersion();
    if (pushed !== null && (seen === null || pushed > seen)) {
      this.#options.log.info(`checking again: a push during the check named feed version ${pushed}, newer than the ${seen ?? 'unread'} it read`);
      this.trigger('push');
      return;
    }
    this.#schedule();
  }

  /** The poll timer, jittered by up to a tenth; after failures, exponential backoff instead (capped by the poll interval). */
  #schedule(): void {
    const pollMs = this.#options.settings.poll_interval_s * 1000;
    const base = this.#failures === 0 ? pollMs : Math.min(pollMs, 5_000 * 2 ** Math.min(this.#failures - 1, 16));
    const delay = Math.round(base * (1 - this.#options.random() / 10));
    this.#timer = setTimeout(() => {
      void this.#options.flushReports();
      this.trigger(this.#failures === 0 ? 'poll' : 'retry');
    }, delay);
  }

  #foundSentence(): string {
    const { offered, staged, blocked } = this.#pipeline.status;
    if (blocked) return blocked.message;
    if (offered === null) return `up to date (${this.#options.running} on channel ${this.#options.settings.channel})`;
    return staged === offered ? `${offered} staged, waiting for the hand-off` : `${offered} offered`;
  }

  async #run(source: Trigger): Promise<void> {
    const { state, log } = this.#options;
    if (!state.setState('CHECKING_UPDATE', `update check (${source})`)) return;
    this.#lastCheck = this.#options.now();
    // The last check's result is this one's from now on: not the previous one's, shown beside this one's time.
    this.#lastResult = { ok: true, message: `under way (${source})` };
    try {
      this.#lastError = null;
      await this.#pipeline.check();
      this.#failures = 0;
      this.#lastResult = { ok: true, message: this.#foundSentence() };
    } catch (error) {
      if (this.#disposed || error instanceof PipelineStopped) {
        log.info(`update ${source} check interrupted by shutdown: ${describeError(error)}`);
        return;
      }
      this.#failures++;
      const failure = isOutpostError(error) ? error : new OutpostError(ErrorCode.INTERNAL, describeError(error), { cause: error });
      this.#lastError = { code: failure.code, message: failure.message };
      this.#lastResult = { ok: false, message: failure.message };
      log.warn(`update failed: ${failure.message}`, { code: failure.code, attempt: this.#failures });
      await this.#options.report(failure.code, failure.message, { trigger: source, attempt: this.#failures, offered: this.#pipeline.status.offered });
    } finally {
      if (state.state !== 'IDLE' && state.state !== 'SHUTTING_DOWN') state.setState('IDLE', this.#lastError ? 'update failed; will retry' : 'update check done');
    }
  }
}

/** What a check found, in a sentence for the diagnostics page. */
export interface CheckResult {
  readonly ok: boolean;
  readonly message: string;
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
