import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AxiosInstance } from 'axios';
import semver from 'semver';
import { describeError, ErrorCode, OutpostError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';
import type { UpdatePaths } from '../../../base/storage-layout.js';
import { failedAttempts, readStaged, writeStaged } from '../../../base/update-records.js';
import type { AgentState } from '../../../common/agent-state.js';
import { blobTarget, ChannelPointer, channelTarget, manifestTarget, ReleaseManifest } from '../../../common/release.js';
import type { UpdateSettings } from '../config-schema.js';
import type { StateMachine } from '../state-machine.js';
import { decide } from './decide.js';
import { downloadVerified } from './download.js';
import type { Feed } from './feed.js';
import { checkStaged, planStage, stageRelease } from './stage.js';

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
}

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
  readonly status: PipelineStatus = { offered: null, staged: null, blocked: null };

  constructor(options: UpdatePipelineOptions) {
    this.#options = options;
    this.status.staged = this.#stagedVersion();
  }

  /** Runs one check to its end; throws an OutpostError on failure, PipelineStopped when the agent stops. */
  async check(): Promise<void> {
    const { log, settings, running, state, feed, updates } = this.#options;
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
    const manifestInfo = await feed.target(manifestTarget(version));
    if (!manifestInfo) throw refused(`channel ${settings.channel} offers ${version}, which the feed does not describe`);
    const manifest = await feed.document(manifestInfo, ReleaseManifest);
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

    const plan = await planStage(manifest, this.#options.installDir);
    const blobs = [...new Map(plan.fromBlobs.map((f) => [f.sha256, f])).keys()];
    const infos = [];
    for (const sha of blobs) {
      const info = await feed.target(blobTarget(sha));
      if (!info) throw refused(`${version} needs a file (${sha}) the feed does not describe`);
      infos.push({ sha, info });
    }
    fs.mkdirSync(updates.blobs, { recursive: true, mode: 0o700 });
    const blobFile = updates.blob;
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
        url: feed.url(info),
        file: blobFile(sha),
        length: info.length,
        hashes: info.hashes,
        stallMs: settings.stall_timeout_s * 1000,
        signal: this.#options.signal,
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
    await stageRelease({ manifest, plan, installDir: this.#options.installDir, blobFile, stagedDir });
    writeStaged(updates, version, this.#options.now());
    this.status.staged = version;
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

function refused(what: string): OutpostError {
  return new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: ${what}.`);
}

function mb(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
