import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AxiosInstance } from 'axios';
import semver from 'semver';
import type { z } from 'zod';
import { tryParseJson } from '../../../base/jsonl.js';
import { describeError, ErrorCode, OutpostError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';
import type { UpdatePaths } from '../../../base/storage-layout.js';
import { failedAttempts, readLastDownload, readStaged, writeLastDownload, writeStaged } from '../../../base/update-records.js';
import type { AgentState } from '../../../common/agent-state.js';
import type { DownloadCost } from '../../../common/update-files.js';
import { ChannelPointer, channelTarget, ReleaseManifest } from '../../../common/release.js';
import type { UpdateSettings } from '../config-schema.js';
import type { StateMachine } from '../state-machine.js';
import { decide } from './decide.js';
import { downloadChunks } from './chunk-download.js';
import { ChunkStore } from './chunk-store.js';
import type { Feed } from './feed.js';
import { FeedObjects } from './feed-objects.js';
import { LocalChunks } from './local-chunks.js';
import { planRelease } from './release-plan.js';
import { checkStaged, stageRelease } from './stage.js';

export interface UpdatePipelineOptions {
  readonly state: StateMachine;
  readonly log: Logger;
  readonly updates: UpdatePaths;
  readonly settings: UpdateSettings;
  readonly feed: Feed;
  /** The running version and where it is installed (unchanged files are taken from there). */
  readonly running: string;
  readonly installDir: string;
  readonly agentId: string;
  readonly http: AxiosInstance;
  readonly now: () => Date;
  /** Aborted at shutdown: a download in progress stops at once. */
  readonly signal: AbortSignal;
  /**
   * Hands a staged version to the updater; resolves once the updater runs (the agent is then
   * shutting down), throws if it never confirms. Without it, a staged version waits.
   */
  readonly handOff?: (version: string, stagedDir: string) => Promise<void>;
  /** Development builds only (TestSwitch HOLD_STATE): see UpdateService. */
  readonly testHold?: TestHold;
}

/** Stay in `state`, once entered, until the file `release` exists: a test acts while the agent really is there. */
export interface TestHold {
  readonly state: AgentState;
  readonly release: string;
}

/** What the offered version and the staged one are, as far as the last check found. */
export interface PipelineStatus {
  offered: string | null;
  staged: string | null;
  /** Set when the offered version is held back by the circuit breaker (not a failure of this check). */
  blocked: { readonly code: ErrorCode; readonly message: string } | null;
  /** What the last download of a release cost, against the release's size (kept on disk: the next version shows it too). */
  lastDownload: DownloadCost | null;
}

/** A manifest larger than this is refused (100,000 files fit). */
const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;
/** Chunk requests in flight at once: enough to hide the round trip, few enough to be a polite client of a CDN. */
const DOWNLOAD_PARALLEL = 8;
/** A version rolled back this many times is not handed to the updater again (until a newer one comes). */
const MAX_FAILED_ATTEMPTS = 2;
/** A hold that nobody releases ends anyway: a broken test must not leave an agent stuck for good. */
const TEST_HOLD_LIMIT_MS = 120_000;

/** The agent's state machine refused a step: the agent is shutting down, and the check stops here. */
export class PipelineStopped extends Error {}

/**
 * One update check, as states of the agent: reads the signed feed, decides, downloads what the
 * installed copy lacks, verifies it, stages a complete tree of the new version in
 * `updates/<version>/`, and hands it to the updater. Verified downloads and partial transfers are
 * kept across failures, so nothing is downloaded twice. The schedule of checks is UpdateService's.
 */
export class UpdatePipeline {
  readonly #options: UpdatePipelineOptions;
  readonly status: PipelineStatus;

  constructor(options: UpdatePipelineOptions) {
    this.#options = options;
    this.status = { offered: null, staged: null, blocked: null, lastDownload: readLastDownload(options.updates) };
    this.status.staged = this.#stagedVersion();
  }

  /** Runs one check to its end; throws an OutpostError on failure, PipelineStopped when the agent stops. */
  async check(): Promise<void> {
    const { log, settings, running, feed, updates, signal } = this.#options;
    this.status.blocked = null;
    await feed.refresh();
    const pointerInfo = await feed.target(channelTarget(settings.channel));
    if (!pointerInfo) {
      log.info(`the feed offers nothing on channel ${settings.channel}`);
      this.status.offered = null;
      return;
    }
    const pointer = await feed.document(pointerInfo, ChannelPointer);
    if (pointer.channel !== settings.channel) throw refused(`the pointer for channel ${settings.channel} names channel ${pointer.channel}`);
    const decision = decide({ running, pointer, agentId: this.#options.agentId, allowDowngrade: settings.allow_downgrade });
    if (!decision.take) {
      this.status.offered = null;
      if (decision.refused) throw new OutpostError(ErrorCode.UPDATE_POLICY, `Update refused: ${decision.reason}.`);
      log.info(`no update: ${decision.reason}`);
      return;
    }
    const version = decision.version;
    const failures = failedAttempts(updates, version);
    if (failures >= MAX_FAILED_ATTEMPTS) {
      this.status.offered = null;
      this.status.blocked = {
        code: ErrorCode.UPDATE_BLOCKED,
        message: `${version} was rolled back ${failures} times and is not tried again until a newer release appears (or updates/failed-versions.json is cleared)`,
      };
      log.info(`no update: ${this.status.blocked.message}`);
      return;
    }
    this.status.offered = version;
    const objects = new FeedObjects(this.#options.http, feed.baseUrl, settings.stall_timeout_s * 1000);
    const manifestBytes = await objects.fetch('manifests', { sha256: pointer.manifest.sha256, storedLength: pointer.manifest.length, maxRaw: MAX_MANIFEST_BYTES }, signal);
    const manifest = parseDocument(`the manifest of ${version}`, manifestBytes, ReleaseManifest);
    if (manifest.version !== version) throw refused(`the manifest for ${version} describes ${manifest.version} (mixed releases)`);
    const stagedDir = updates.stagedTree(version);
    if (this.status.staged === version) {
      const problem = await checkStaged(manifest, stagedDir);
      if (problem === null) {
        log.info(`${version} is already staged (checked again); nothing to download`);
        await this.#handOff(version);
        return;
      }
      log.warn(`the staged ${version} is damaged (${problem}); deleting it and staging it afresh`);
      this.#forgetStaged(version);
    }
    await this.#downloadAndStage(manifest, objects);
    await this.#handOff(version);
  }

  /** Downloads the chunks the agent holds nowhere and builds the new version's tree from them and what it holds. */
  async #downloadAndStage(manifest: ReleaseManifest, objects: FeedObjects): Promise<void> {
    const { log, running, state, updates, signal } = this.#options;
    const { version } = manifest;
    const stagedDir = updates.stagedTree(version);
    // Everything the agent holds is a source: the installation, a version staged earlier (a newer
    // release has come since), and the chunks an interrupted download left.
    const otherStaged = this.status.staged === null ? [] : [updates.stagedTree(this.status.staged)];
    const local = await LocalChunks.scan([this.#options.installDir, ...otherStaged], updates.chunks, manifest.chunking);
    const plan = await planRelease(manifest, local, objects, signal);
    const missingBytes = plan.missing.reduce((n, c) => n + c.size, 0);
    const releaseBytes = manifest.files.reduce((n, f) => n + f.size, 0);
    this.#checkFreeSpace(missingBytes + releaseBytes, version);
    const unchanged = plan.files.filter((f) => f.source.kind === 'whole').length;
    log.info(
      `update ${running} -> ${version}: ${manifest.files.length} files, ${unchanged} unchanged, ${plan.missing.length} ${plan.missing.length === 1 ? 'chunk' : 'chunks'} to download in ${plan.runs.length} ${plan.runs.length === 1 ? 'request' : 'requests'} (${missingBytes} of ${releaseBytes} bytes; ${plan.reusedBytes} reused from ${local.scannedBytes} bytes on this machine)`,
    );

    await this.#enter('UPDATING_DOWNLOADING', `downloading ${version}`);
    let done = 0;
    let lastPercent = 0;
    // At once, so that a run slow to start already shows what is coming.
    if (missingBytes > 0) state.progress({ bytes: 0, total: missingBytes, percent: 0 });
    await downloadChunks({
      objects,
      runs: plan.runs,
      store: new ChunkStore(updates.chunks),
      parallel: DOWNLOAD_PARALLEL,
      signal,
      log,
      onChunks: (size) => {
        done += size;
        const percent = missingBytes === 0 ? 100 : Math.floor((done * 100) / missingBytes);
        if (percent >= lastPercent + 10 || percent === 100) {
          lastPercent = percent;
          state.progress({ bytes: done, total: missingBytes, percent });
        }
      },
    });
    this.status.lastDownload = { version, downloaded_bytes: objects.wireBytes, release_bytes: releaseBytes };
    writeLastDownload(updates, this.status.lastDownload);
    log.info(`downloaded ${objects.wireBytes} bytes for ${version} (${percentOf(objects.wireBytes, releaseBytes)} of its ${releaseBytes} bytes)`);

    await this.#enter('UPDATING_VERIFYING', `verifying ${version}`);
    // Every chunk was verified as it arrived; what staging needs must all be here now.
    local.addStore(updates.chunks);
    const absent = plan.missing.find((c) => local.chunk(c.sha256)?.size !== c.size);
    if (absent) throw refused(`chunk ${absent.sha256.slice(0, 12)} was downloaded but is not in ${updates.chunks} any more`);

    await this.#enter('UPDATING_STAGING', `staging ${version}`);
    await stageRelease({ manifest, plan, local, stagedDir, storeDir: updates.chunks });
    writeStaged(updates, version, this.#options.now());
    this.status.staged = version;
    fs.rmSync(updates.chunks, { recursive: true, force: true });
    log.info(`${version} staged complete and verified in ${stagedDir}`);
  }

  async #handOff(version: string): Promise<void> {
    const { handOff, settings, log } = this.#options;
    if (!handOff) return;
    if (!settings.hand_off) {
      log.info(`${version} is staged; update.hand_off is off, so it waits`);
      return;
    }
    await this.#enter('UPDATING_HANDOFF', `handing ${version} to the updater`);
    await handOff(version, this.#options.updates.stagedTree(version));
  }

  /** The next state of the check; refused only while the agent shuts down, which ends the check at once. */
  async #enter(next: AgentState, reason: string): Promise<void> {
    const { state, signal } = this.#options;
    if (!state.setState(next, reason)) throw new PipelineStopped(`the update check stopped before ${next}: the agent is ${state.state}`);
    const hold = this.#options.testHold;
    if (hold?.state !== next) return;
    this.#options.log.warn(`test hold: staying in ${next} until ${hold.release} exists (OUTPOST_TEST_HOLD_STATE)`);
    const deadline = Date.now() + TEST_HOLD_LIMIT_MS;
    while (!fs.existsSync(hold.release) && !signal.aborted && Date.now() < deadline) await sleep(20);
    if (signal.aborted) throw new PipelineStopped(`the update check stopped in ${next}: the agent is ${state.state}`);
  }

  #checkFreeSpace(needed: number, version: string): void {
    const { settings, updates } = this.#options;
    const reserve = settings.min_free_mb * 1024 * 1024;
    const stats = fs.statfsSync(updates.dir);
    const free = stats.bavail * stats.bsize;
    if (free - needed < reserve) {
      throw new OutpostError(
        ErrorCode.UPDATE_DISK_SPACE,
        `Not enough disk space for ${version}: it needs ${mb(needed)} MB and ${mb(reserve)} MB must stay free, but ${mb(free)} MB are free on ${updates.dir}. Nothing was downloaded.`,
      );
    }
  }

  /** The staged version, if its tree is there; a record left by an update that has since happened (or vanished) is forgotten. */
  #stagedVersion(): string | null {
    const { updates, running } = this.#options;
    const record = readStaged(updates);
    if (record === null) {
      if (fs.existsSync(updates.staged)) this.#forgetStaged(null); // damaged
      return null;
    }
    const { version } = record;
    if (semver.valid(version) !== version) {
      this.#forgetStaged(null);
      return null;
    }
    if (version !== running && fs.statSync(updates.stagedTree(version), { throwIfNoEntry: false })?.isDirectory()) return version;
    this.#forgetStaged(version);
    return null;
  }

  #forgetStaged(version: string | null): void {
    const { updates } = this.#options;
    try {
      fs.rmSync(updates.staged, { force: true });
      if (version) fs.rmSync(updates.stagedTree(version), { recursive: true, force: true });
    } catch (error) {
      this.#options.log.warn(`could not remove the staged record or tree (tried again at the next check): ${describeError(error)}`);
    }
    this.status.staged = null;
  }
}

/** A verified document's bytes as JSON of `schema`; anything else is refused, saying what is wrong. */
function parseDocument<S extends z.ZodType>(what: string, bytes: Buffer, schema: S): z.infer<S> {
  const parsed = schema.safeParse(tryParseJson(bytes.toString('utf8')));
  if (!parsed.success) throw refused(`${what} is not a valid document: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

function refused(what: string): OutpostError {
  return new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: ${what}.`);
}

function percentOf(part: number, whole: number): string {
  return whole === 0 ? '0%' : `${((part * 100) / whole).toFixed(2)}%`;
}

function mb(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
