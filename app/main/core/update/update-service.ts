import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AxiosInstance } from 'axios';
import semver from 'semver';
import type { AgentState } from '../../../common/agent-state.js';
import type { UpdateStatus } from '../../../common/ipc.js';
import type { PushMessage } from '../../../common/push.js';
import { blobTarget, ChannelPointer, channelTarget, manifestTarget, ReleaseManifest } from '../../../common/release.js';
import { PushClient } from '../backend/push-client.js';
import { writeFileAtomic } from '../atomic-file.js';
import type { UpdateSettings } from '../config-schema.js';
import { describeError, ErrorCode, isOutpostError, OutpostError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { StateMachine } from '../state-machine.js';
import { decide } from './decide.js';
import { downloadVerified } from './download.js';
import { Feed } from './feed.js';
import { checkStaged, planStage, stageRelease } from './stage.js';

export interface UpdateServiceOptions {
  readonly state: StateMachine;
  readonly log: Logger;
  /** `<storage>/updates`. */
  readonly updatesDir: string;
  readonly settings: UpdateSettings;
  readonly backend: { readonly url: string; readonly ws_url: string };
  readonly trustedRootFile: string;
  /** The running version and where it is installed (unchanged files are taken from there). */
  readonly running: string;
  readonly installDir: string;
  readonly agentId: string;
  readonly http: AxiosInstance;
  /** The agent's error reporter (never rejects). */
  readonly report: (code: string, message: string, context?: Record<string, string | number | boolean | null>) => Promise<void>;
  /** Sends buffered error reports; runs on the poll timer. */
  readonly flushReports: () => Promise<unknown>;
  readonly now: () => Date;
  readonly random: () => number;
  readonly requestTimeoutMs?: number;
  /**
   * Hands a staged version to the updater; resolves once the updater runs (the agent is then
   * shutting down), throws if it never confirms. Without it, a staged version waits.
   */
  readonly handOff?: (version: string, stagedDir: string) => Promise<void>;
  /**
   * Tests only (OUTPOST_TEST_HOLD_STATE=<STATE>:<ms>): stay that long in that state once entered, so
   * that a test can act (`--force`, SIGKILL) while the agent really is in it.
   */
  readonly testHold?: { readonly state: AgentState; readonly ms: number };
}

/** A version rolled back this many times is not handed to the updater again (until a newer one comes). */
const MAX_FAILED_ATTEMPTS = 2;

type Trigger = 'start' | 'poll' | 'push' | 'retry' | 'request';

/**
 * The update pipeline, as states of the agent: a check (from the poll timer, a push, or a request)
 * reads the signed feed, decides, downloads what the installed copy lacks, verifies it, and stages a
 * complete tree of the new version in `updates/<version>/`. One run at a time: a trigger while one
 * runs is logged and ignored. A failure cleans up, reports, returns to IDLE and retries with backoff;
 * verified downloads and partial transfers are kept, so nothing is downloaded twice.
 */
export class UpdateService {
  readonly #options: UpdateServiceOptions;
  readonly #feed: Feed;
  readonly #push: PushClient;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #failures = 0;
  #disposed = false;
  readonly #abort = new AbortController();
  #status: { offered: string | null; staged: string | null; lastError: UpdateStatus['last_error']; lastCheck: Date | null } = {
    offered: null,
    staged: null,
    lastError: null,
    lastCheck: null,
  };

  constructor(options: UpdateServiceOptions) {
    this.#options = options;
    this.#feed = new Feed({
      baseUrl: new URL('feed/', withSlash(options.backend.url)).toString(),
      cacheDir: path.join(options.updatesDir, 'metadata'),
      trustedRootFile: options.trustedRootFile,
      http: options.http,
      timeoutMs: options.requestTimeoutMs ?? 30_000,
      log: options.log.child('feed'),
    });
    this.#push = new PushClient({ url: options.backend.ws_url, log: options.log.child('push'), onPush: (m) => this.#onPush(m), random: options.random });
    this.#status.staged = this.#stagedVersion();
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

  /** Resolves when the current run (if any) has finished: shutdown waits for a consistent disk. */
  async idle(): Promise<void> {
    await this.#running;
  }

  status(): { update: UpdateStatus; lastCheck: string | null } {
    const { offered, staged, lastError, lastCheck } = this.#status;
    return { update: { offered, staged, last_error: lastError }, lastCheck: lastCheck?.toISOString() ?? null };
  }

  /** Checks now, unless a run is already under way (then the trigger is logged and ignored). */
  trigger(source: Trigger): void {
    if (this.#disposed) return;
    if (this.#running) {
      this.#options.log.info(`update check (${source}) ignored: one is already running`);
      return;
    }
    clearTimeout(this.#timer);
    this.#running = this.#run(source).finally(() => {
      this.#running = undefined;
      this.#schedule();
    });
  }

  #onPush(message: PushMessage): void {
    this.#options.log.info(`push: ${message.type} (feed version ${message.feed_version})`);
    this.trigger('push');
  }

  /** The poll timer, jittered by up to a tenth; after failures, exponential backoff instead (capped by the poll interval). */
  #schedule(): void {
    if (this.#disposed) return;
    const pollMs = this.#options.settings.poll_interval_s * 1000;
    const base = this.#failures === 0 ? pollMs : Math.min(pollMs, 5_000 * 2 ** Math.min(this.#failures - 1, 16));
    const delay = Math.round(base * (1 - this.#options.random() / 10));
    this.#timer = setTimeout(() => {
      void this.#options.flushReports();
      this.trigger(this.#failures === 0 ? 'poll' : 'retry');
    }, delay);
  }

  async #run(source: Trigger): Promise<void> {
    const { state, log } = this.#options;
    if (!state.setState('CHECKING_UPDATE', `update check (${source})`)) return;
    this.#status.lastCheck = this.#options.now();
    try {
      this.#status.lastError = null;
      await this.#check();
      this.#failures = 0;
    } catch (error) {
      if (this.#disposed) {
        log.info(`update ${source} check interrupted by shutdown: ${describeError(error)}`);
        return;
      }
      this.#failures++;
      const failure = isOutpostError(error) ? error : new OutpostError(ErrorCode.INTERNAL, describeError(error), { cause: error });
      this.#status.lastError = { code: failure.code, message: failure.message };
      log.warn(`update failed: ${failure.message}`, { code: failure.code, attempt: this.#failures });
      await this.#options.report(failure.code, failure.message, { trigger: source, attempt: this.#failures, offered: this.#status.offered });
    } finally {
      if (state.state !== 'IDLE' && state.state !== 'SHUTTING_DOWN') state.setState('IDLE', this.#status.lastError ? 'update failed; will retry' : 'update check done');
    }
  }

  async #check(): Promise<void> {
    const { log, settings, running, state } = this.#options;
    await this.#feed.refresh();
    const pointerInfo = await this.#feed.target(channelTarget(settings.channel));
    if (!pointerInfo) {
      log.info(`the feed offers nothing on channel ${settings.channel}`);
      this.#status.offered = null;
      return;
    }
    const pointer = await this.#feed.document(pointerInfo, ChannelPointer);
    if (pointer.channel !== settings.channel) throw refused(`the pointer for channel ${settings.channel} names channel ${pointer.channel}`);
    const decision = decide({ running, pointer, agentId: this.#options.agentId, allowDowngrade: settings.allow_downgrade });
    if (!decision.take) {
      this.#status.offered = null;
      if (decision.refused) throw new OutpostError(ErrorCode.UPDATE_POLICY, `Update refused: ${decision.reason}.`);
      log.info(`no update: ${decision.reason}`);
      return;
    }
    const version = decision.version;
    const failures = this.#failedAttempts(version);
    if (failures >= MAX_FAILED_ATTEMPTS) {
      this.#status.offered = null;
      this.#status.lastError = { code: ErrorCode.UPDATE_BLOCKED, message: `${version} was rolled back ${failures} times and is not tried again until a newer release appears (or updates/failed-versions.json is cleared)` };
      log.info(`no update: ${this.#status.lastError.message}`);
      return;
    }
    this.#status.offered = version;
    const manifestInfo = await this.#feed.target(manifestTarget(version));
    if (!manifestInfo) throw refused(`channel ${settings.channel} offers ${version}, which the feed does not describe`);
    const manifest = await this.#feed.document(manifestInfo, ReleaseManifest);
    if (manifest.version !== version) throw refused(`the manifest for ${version} describes ${manifest.version} (mixed releases)`);
    if (this.#status.staged === version) {
      const problem = await checkStaged(manifest, path.join(this.#options.updatesDir, version));
      if (problem === null) {
        log.info(`${version} is already staged (checked again); nothing to download`);
        await this.#handOff(version);
        return;
      }
      log.warn(`the staged ${version} is damaged (${problem}); deleting it and staging it afresh`);
      this.#forgetStaged(version);
    }

    const plan = await planStage(manifest, this.#options.installDir);
    const blobs = [...new Map(plan.fromBlobs.map((f) => [f.sha256, f])).keys()];
    const infos = [];
    for (const sha of blobs) {
      const info = await this.#feed.target(blobTarget(sha));
      if (!info) throw refused(`${version} needs a file (${sha}) the feed does not describe`);
      infos.push({ sha, info });
    }
    const blobDir = path.join(this.#options.updatesDir, 'blobs');
    fs.mkdirSync(blobDir, { recursive: true, mode: 0o700 });
    const blobFile = (sha: string) => path.join(blobDir, `${sha}.br`);
    const missing = infos.filter(({ sha }) => !fs.existsSync(blobFile(sha)));
    const downloadBytes = missing.reduce((n, { info }) => n + info.length, 0);
    const stagedBytes = manifest.files.reduce((n, f) => n + f.size, 0);
    this.#checkFreeSpace(downloadBytes + stagedBytes, version);
    log.info(`update ${running} -> ${version}: ${manifest.files.length} files, ${plan.fromInstalled.length} unchanged, ${missing.length} to download (${downloadBytes} bytes)`);

    await this.#enter('UPDATING_DOWNLOADING', `downloading ${version}`);
    let done = 0;
    let lastPercent = -1;
    for (const { sha, info } of missing) {
      const result = await downloadVerified(this.#options.http, {
        url: this.#feed.url(info),
        file: blobFile(sha),
        length: info.length,
        hashes: info.hashes,
        stallMs: this.#options.settings.stall_timeout_s * 1000,
        signal: this.#abort.signal,
        onBytes: (bytes) => {
          const percent = downloadBytes === 0 ? 100 : Math.floor(((done + bytes) * 100) / downloadBytes);
          if (percent >= lastPercent + 10 || percent === 100) {
            lastPercent = percent;
            state.progress({ bytes: done + bytes, total: downloadBytes, percent });
          }
        },
      });
      if (result.resumedFrom > 0) log.info(`resumed ${info.path} at byte ${result.resumedFrom} of ${info.length}`);
      done += info.length;
    }

    await this.#enter('UPDATING_VERIFYING', `verifying ${version}`);
    for (const { sha, info } of infos) {
      const size = fs.statSync(blobFile(sha), { throwIfNoEntry: false })?.size;
      if (size !== info.length) throw refused(`the downloaded ${info.path} is not the length the feed signed`);
    }

    await this.#enter('UPDATING_STAGING', `staging ${version}`);
    const stagedDir = path.join(this.#options.updatesDir, version);
    await stageRelease({ manifest, plan, installDir: this.#options.installDir, blobFile, stagedDir });
    this.#recordStaged(version);
    for (const { sha } of infos) fs.rmSync(blobFile(sha), { force: true });
    log.info(`${version} staged complete and verified in ${stagedDir}`);
    await this.#handOff(version);
  }

  async #handOff(version: string): Promise<void> {
    const { handOff, settings, log } = this.#options;
    if (!handOff) return;
    if (!settings.hand_off) {
      log.info(`${version} is staged; update.hand_off is off, so it waits`);
      return;
    }
    if (!(await this.#enter('UPDATING_HANDOFF', `handing ${version} to the updater`))) return;
    await handOff(version, path.join(this.#options.updatesDir, version));
  }

  async #enter(next: AgentState, reason: string): Promise<boolean> {
    const entered = this.#options.state.setState(next, reason);
    const hold = this.#options.testHold;
    if (entered && hold?.state === next) {
      this.#options.log.warn(`test hold: staying in ${next} for ${hold.ms} ms (OUTPOST_TEST_HOLD_STATE)`);
      await sleep(hold.ms, undefined, { signal: this.#abort.signal }).catch(() => undefined);
    }
    return entered;
  }

  #failedAttempts(version: string): number {
    try {
      const failures = JSON.parse(fs.readFileSync(path.join(this.#options.updatesDir, 'failed-versions.json'), 'utf8')) as Record<string, { count?: number }>;
      return failures[version]?.count ?? 0;
    } catch {
      return 0;
    }
  }

  #checkFreeSpace(needed: number, version: string): void {
    const reserve = this.#options.settings.min_free_mb * 1024 * 1024;
    const stats = fs.statfsSync(this.#options.updatesDir);
    const free = stats.bavail * stats.bsize;
    if (free - needed < reserve) {
      throw new OutpostError(
        ErrorCode.UPDATE_DISK_SPACE,
        `Not enough disk space for ${version}: it needs ${mb(needed)} MB and ${mb(reserve)} MB must stay free, but ${mb(free)} MB are free on ${this.#options.updatesDir}. Nothing was downloaded.`,
      );
    }
  }

  /** A record beside the staged tree (not inside it: the tree stays byte-identical to the release). */
  #recordStaged(version: string): void {
    const record = path.join(this.#options.updatesDir, 'staged.json');
    writeFileAtomic(record, JSON.stringify({ version, staged_at: this.#options.now().toISOString() }));
    this.#status.staged = version;
  }

  /** The staged version, if its tree is there; a record left by an update that has since happened (or vanished) is forgotten. */
  #stagedVersion(): string | null {
    let version: string;
    try {
      ({ version } = JSON.parse(fs.readFileSync(path.join(this.#options.updatesDir, 'staged.json'), 'utf8')) as { version: string });
    } catch {
      return null;
    }
    if (semver.valid(version) !== version) {
      this.#forgetStaged(null);
      return null;
    }
    if (version !== this.#options.running && fs.statSync(path.join(this.#options.updatesDir, version), { throwIfNoEntry: false })?.isDirectory()) return version;
    this.#forgetStaged(version);
    return null;
  }

  #forgetStaged(version: string | null): void {
    fs.rmSync(path.join(this.#options.updatesDir, 'staged.json'), { force: true });
    if (version) fs.rmSync(path.join(this.#options.updatesDir, version), { recursive: true, force: true });
    this.#status.staged = null;
  }
}

function refused(what: string): OutpostError {
  return new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: ${what}.`);
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

function mb(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
