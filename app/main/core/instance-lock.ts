import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { LockRecord, ProcessIdentity } from '../../common/process-identity.js';
import { identifySelf, processStatus, readLiveRecord } from '../../base/process-liveness.js';
import type { Platform } from '../platform/index.js';
import { ErrorCode, errnoCode, isOutpostError, OutpostError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';

/**
 * The single-instance lock: a file whose content names its holder.
 *
 * Why not proper-lockfile: it stores no owner, so it cannot tell a crashed holder from a live one (a
 * SIGKILLed agent would block the next start for the whole stale period) nor notice pid reuse; its
 * stale takeover removes the lock and re-creates it, so two contenders can each remove the other's
 * fresh lock; and its compromise handler throws by default. Here:
 * - acquisition is atomic with its content: the record is written and fsynced under a private name,
 *   then hard-linked to `agent.lock` (link fails if the name exists), so no reader ever sees an
 *   empty or half-written record;
 * - stale means: the process is gone, the pid belongs to a process that started at another time
 *   (pid reuse), the record is garbage, or the heartbeat stopped, which is confirmed by watching it
 *   for two more heartbeat periods (so a holder that just woke from system sleep is not robbed);
 * - takeovers are serialised by a second short-lived lock, and a takeover removes only the exact
 *   stale file it judged (same inode, same bytes), so two contenders never both win;
 * - the holder rewrites its heartbeat through the file descriptor it created, never by path: if it
 *   was taken over while frozen, it writes to its own orphaned file and, seeing the path now names
 *   another file, stops (`onCompromised`).
 */

const RECORD_BYTES = 512;



export interface InstanceLockOptions {
  readonly file: string;
  readonly platform: Platform;
  readonly log: Logger;
  readonly version: string;
  readonly heartbeatMs: number;
  readonly staleMs: number;
  readonly now: () => Date;
  /** Called once if another process took the lock over while this one still thought it held it. */
  readonly onCompromised: (reason: string) => void;
}

interface Snapshot {
  readonly bytes: Buffer;
  readonly record: LockRecord | null;
  readonly ino: bigint;
}

type Verdict = { readonly stale: false } | { readonly stale: true; readonly reason: string };

const MAX_ROUNDS = 8;
const TAKEOVER_MUTEX_STALE_MS = 10_000;
const TAKEOVER_MUTEX_WAIT_MS = 3_000;

export class InstanceLock {
  readonly record: LockRecord;
  readonly #options: InstanceLockOptions;
  readonly #fd: number;
  readonly #ino: bigint;
  #timer: NodeJS.Timeout | undefined;
  #lastBeat: number;
  #held = true;

  private constructor(options: InstanceLockOptions, record: LockRecord, fd: number) {
    this.#options = options;
    this.record = record;
    this.#fd = fd;
    this.#ino = fs.fstatSync(fd, { bigint: true }).ino;
    this.#lastBeat = options.now().getTime();
    this.#timer = setInterval(() => this.#beat(), options.heartbeatMs);
  }

  /**
   * Takes the lock, or throws ERR_LOCK_HELD naming the live holder. With `waitMs`, a live holder is
   * given that long to let go first (`outpost --force`, after asking the holder to shut down).
   */
  static async acquire(options: InstanceLockOptions, waitMs = 0): Promise<InstanceLock> {
    const deadline = Date.now() + waitMs;
    for (let announced = false; ; announced = true) {
      try {
        return await InstanceLock.#acquireOnce(options);
      } catch (error) {
        if (!isOutpostError(error, ErrorCode.LOCK_HELD)) throw error;
        if (Date.now() >= deadline) {
          options.log.info('lock held by another live instance; not starting', { file: options.file, ...error.details });
          throw error;
        }
        if (!announced) options.log.info(`waiting up to ${Math.round(waitMs / 1000)} s for pid ${error.details.holder_pid} to release the lock`);
        await sleep(100);
      }
    }
  }

  static async #acquireOnce(options: InstanceLockOptions): Promise<InstanceLock> {
    const { file, log } = options;
    removeOrphanedTempFiles(file, options.platform);
    for (let round = 1; round <= MAX_ROUNDS; round++) {
      const created = tryCreate(options);
      if (created) {
        log.info('lock acquired', { file, pid: created.record.pid });
        return new InstanceLock(options, created.record, created.fd);
      }
      const seen = readSnapshot(file);
      if (!seen) continue; // released between our attempt and our look: try again
      const verdict = await judge(seen, options);
      if (!verdict.stale) {
        const holder = seen.record as LockRecord;
        throw new OutpostError(
          ErrorCode.LOCK_HELD,
          `Another Outpost is running (pid ${holder.pid}, version ${holder.version}, since ${holder.acquired_at}) and holds ${file}; leaving it alone.`,
          { details: { holder_pid: holder.pid, holder_version: holder.version, file } },
        );
      }
      log.warn(`lock is stale: ${verdict.reason}; taking it over`, { file, holder_pid: seen.record?.pid });
      const taken = await takeOver(seen, options);
      if (taken) {
        log.info('lock taken over', { file, previous_pid: seen.record?.pid, reason: verdict.reason });
        return new InstanceLock(options, taken.record, taken.fd);
      }
      log.info('another process changed the lock during the takeover; looking again', { file });
    }
    throw new OutpostError(ErrorCode.LOCK_IO, `Could not settle who holds ${file} after ${MAX_ROUNDS} attempts; is something else rewriting it?`);
  }

  get held(): boolean {
    return this.#held;
  }

  /**
   * Gives the lock up if it is still ours. Synchronous, so that it also works from the process's
   * 'exit' event, the last resort on exit paths that skip the graceful shutdown.
   */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    clearInterval(this.#timer);
    const ours = this.#stillOurs();
    fs.closeSync(this.#fd);
    if (ours) {
      fs.rmSync(this.#options.file, { force: true });
      this.#options.log.info('lock released', { file: this.#options.file });
    } else {
      this.#options.log.warn('lock not released: it is no longer ours', { file: this.#options.file });
    }
  }

  #stillOurs(): boolean {
    try {
      return fs.statSync(this.#options.file, { bigint: true }).ino === this.#ino;
    } catch {
      return false;
    }
  }

  #beat(): void {
    const { file, log, now, heartbeatMs } = this.#options;
    const at = now();
    const late = at.getTime() - this.#lastBeat - heartbeatMs;
    if (late > heartbeatMs) log.warn(`heartbeat ${late} ms late (was this process suspended?)`);
    if (!this.#stillOurs()) {
      const holder = readSnapshot(file)?.record;
      const reason = holder
        ? `the lock was taken over by pid ${holder.pid} while this process (pid ${process.pid}) was not heartbeating`
        : 'the lock file was removed by someone else';
      this.#held = false;
      clearInterval(this.#timer);
      fs.closeSync(this.#fd);
      log.error(`lock lost: ${reason}; stopping so that two agents never share one storage folder`, { file });
      this.#options.onCompromised(reason);
      return;
    }
    this.#lastBeat = at.getTime();
    try {
      fs.writeSync(this.#fd, encode({ ...this.record, heartbeat: at.toISOString() }), 0, RECORD_BYTES, 0);
    } catch (error) {
      // A full disk or an I/O error: keep trying at the next beat. If it lasts, a successor may judge
      // the lock stale and take it over, and the check above stops this process then.
      log.error(`heartbeat not written: ${errnoCode(error) ?? error}`, { file });
    }
  }
}

function encode(record: LockRecord): Buffer {
  const json = JSON.stringify(record);
  // Fixed size, so that a heartbeat rewrite in place never changes the length a reader sees.
  if (json.length >= RECORD_BYTES) throw new Error(`lock record too long (${json.length} bytes)`);
  return Buffer.from(`${json.padEnd(RECORD_BYTES - 1, ' ')}\n`, 'utf8');
}

function newRecord(options: InstanceLockOptions): LockRecord {
  const at = options.now().toISOString();
  return {
    ...identifySelf(options.platform),
    version: options.version,
    heartbeat: at,
    acquired_at: at,
    token: randomBytes(8).toString('hex'),
  };
}

/** Creates the lock with its full content in one atomic step, or returns null if it exists. */
function tryCreate(options: InstanceLockOptions): { record: LockRecord; fd: number } | null {
  const record = newRecord(options);
  const temp = `${options.file}.${process.pid}.${record.token}.tmp`;
  const fd = fs.openSync(temp, 'wx+', 0o600);
  try {
    fs.writeSync(fd, encode(record), 0, RECORD_BYTES, 0);
    fs.fsyncSync(fd);
    fs.linkSync(temp, options.file);
    return { record, fd };
  } catch (error) {
    fs.closeSync(fd);
    if (errnoCode(error) === 'EEXIST') return null;
    throw new OutpostError(ErrorCode.LOCK_IO, `Cannot create the lock ${options.file}: ${errnoCode(error) ?? error}.`, { cause: error });
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/**
 * The live holder of the lock file, if any: its record, when its process runs (and is the process that
 * took the lock, where the OS tells start times). For outsiders such as the updater: which version runs.
 */
export function lockHolder(file: string, platform: Platform): LockRecord | null {
  return readLiveRecord(file, platform, LockRecord);
}

function readSnapshot(file: string): Snapshot | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw error;
  }
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    if (!stat.isFile()) {
      // Never removed: the agent only ever writes a file there, so this is someone's mistake to look at.
      throw new OutpostError(ErrorCode.LOCK_IO, `The lock ${file} is ${stat.isDirectory() ? 'a folder' : 'not a file'}; no agent leaves one there. Remove it, then start again.`, { details: { file } });
    }
    const bytes = fs.readFileSync(fd);
    return { bytes, record: parseRecord(bytes), ino: stat.ino };
  } finally {
    fs.closeSync(fd);
  }
}

function parseRecord(bytes: Buffer): LockRecord | null {
  try {
    const parsed = LockRecord.safeParse(JSON.parse(bytes.toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

async function judge(seen: Snapshot, options: InstanceLockOptions): Promise<Verdict> {
  const { platform } = options;
  const holder = seen.record;
  if (!holder) {
    // A torn read of a heartbeat being rewritten looks like garbage too: look once more.
    await sleep(50);
    const again = readSnapshot(options.file);
    if (again?.record) return judge(again, options);
    return { stale: true, reason: 'its record is unreadable' };
  }
  if (holder.pid === process.pid) return { stale: true, reason: `it names this process's own pid ${holder.pid}, so it was left by an earlier process` };
  // A start time that cannot be read (access denied) cannot rule the holder out: only the heartbeat can tell, below.
  const status = processStatus(holder, platform);
  if (status === 'gone') return { stale: true, reason: `its holder, pid ${holder.pid}, is gone` };
  if (status === 'pid_reused') return { stale: true, reason: `pid ${holder.pid} now belongs to another process (pid reused)` };
  const age = options.now().getTime() - Date.parse(holder.heartbeat);
  if (Math.abs(age) <= options.staleMs) return { stale: false };
  // Old heartbeat: make sure it has really stopped before robbing a live process.
  await sleep(2 * options.heartbeatMs + 50);
  const later = readSnapshot(options.file);
  if (later && later.ino === seen.ino && later.bytes.equals(seen.bytes)) {
    return { stale: true, reason: `pid ${holder.pid} is alive but its heartbeat stopped ${Math.round(age / 1000)} s ago (frozen?)` };
  }
  return { stale: false };
}

function restore(graveyard: string, file: string): void {
  try {
    fs.linkSync(graveyard, file);
  } catch (error) {
    // EEXIST: a newer lock already stands there; the one we moved loses, and its holder notices at
    // its next heartbeat and stops.
    if (errnoCode(error) !== 'EEXIST') throw error;
  } finally {
    fs.rmSync(graveyard, { force: true });
  }
}

/** Replaces exactly the stale lock we judged, under the takeover mutex. */
async function takeOver(seen: Snapshot, options: InstanceLockOptions): Promise<{ record: LockRecord; fd: number } | null> {
  const mutex = await acquireTakeoverMutex(options);
  if (!mutex) return null;
  try {
    const current = readSnapshot(options.file);
    if (current && (current.ino !== seen.ino || !current.bytes.equals(seen.bytes))) return null;
    if (current) {
      const graveyard = `${options.file}.${randomBytes(6).toString('hex')}.stale`;
      fs.renameSync(options.file, graveyard);
      if (fs.statSync(graveyard, { bigint: true }).ino !== seen.ino) {
        // Someone replaced the file between our look and the rename (possible only if the mutex was
        // wrongly judged abandoned): put theirs back and let the caller look again.
        restore(graveyard, options.file);
        return null;
      }
      fs.rmSync(graveyard, { force: true });
    }
    return tryCreate(options);
  } finally {
    releaseTakeoverMutex(mutex);
  }
}

/** The takeover mutex's content: its owner, and a token saying whose it is. */
const MutexRecord = ProcessIdentity.extend({ token: z.string() });

interface Mutex {
  readonly file: string;
  readonly token: string;
}

async function acquireTakeoverMutex(options: InstanceLockOptions): Promise<Mutex | null> {
  const file = `${options.file}.takeover`;
  const token = randomBytes(8).toString('hex');
  const body = JSON.stringify({ ...identifySelf(options.platform), token });
  const deadline = Date.now() + TAKEOVER_MUTEX_WAIT_MS;
  while (Date.now() < deadline) {
    try {
      fs.writeFileSync(file, body, { flag: 'wx', mode: 0o600 });
      return { file, token };
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
    const abandoned = abandonedMutex(file, options);
    if (abandoned !== null) {
      const graveyard = `${file}.${token}.stale`;
      try {
        fs.renameSync(file, graveyard);
        if (fs.statSync(graveyard, { bigint: true }).ino === abandoned) {
          fs.rmSync(graveyard, { force: true });
          options.log.warn('removed an abandoned takeover mutex', { file });
        } else {
          restore(graveyard, file);
        }
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT') throw error;
      }
      continue;
    }
    await sleep(25);
  }
  return null;
}

/** The inode of the takeover mutex if its owner died or it is too old to be live, else null. */
function abandonedMutex(file: string, options: InstanceLockOptions): bigint | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null; // gone already: just try to create it again
  }
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    if (Date.now() - Number(stat.mtimeMs) > TAKEOVER_MUTEX_STALE_MS) return stat.ino;
    let owner: unknown;
    try {
      owner = JSON.parse(fs.readFileSync(fd, 'utf8'));
    } catch {
      return null; // being written this instant; if it is garbage, it ages out above
    }
    const identity = ProcessIdentity.safeParse(owner);
    return !identity.success || processStatus(identity.data, options.platform) !== 'running' ? stat.ino : null;
  } finally {
    fs.closeSync(fd);
  }
}

function releaseTakeoverMutex(mutex: Mutex): void {
  try {
    const owner = MutexRecord.safeParse(JSON.parse(fs.readFileSync(mutex.file, 'utf8')));
    if (owner.success && owner.data.token === mutex.token) fs.rmSync(mutex.file, { force: true });
  } catch {
    // Already gone (or replaced after we were judged abandoned): nothing of ours to remove.
  }
}

/** `agent.lock.<pid>.<token>.tmp` files of processes that died between writing and linking. */
function removeOrphanedTempFiles(file: string, platform: Platform): void {
  const dir = path.dirname(file);
  const pattern = new RegExp(`^${escapeRegExp(path.basename(file))}\\.(\\d+)\\.[0-9a-f]+\\.tmp$`);
  for (const name of safeReaddir(dir)) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (pid && !platform.isProcessAlive(pid)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
