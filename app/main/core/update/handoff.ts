import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { z } from 'zod';
import { setTimeout as sleep } from 'node:timers/promises';
import type { UpdatePaths } from '../../../base/storage-layout.js';
import { jobPaths, readJournal, writeJob } from '../../../base/update-records.js';
import type { UpdaterJob } from '../../../common/update-files.js';
import { TestSwitch } from '../../../base/build-flavor.js';
import { describeError, ErrorCode, OutpostError } from '../../../base/errors.js';
import type { Logger } from '../../../base/logger.js';

export interface Command {
  readonly command: string;
  readonly args: readonly string[];
}

/**
 * How to run the updater: a single executable (a release), which runs from a copy beside the job, with
 * the native packages it loads copied into a node_modules/ beside it; or a script (a checkout).
 */
export type UpdaterProgram =
  | { readonly kind: 'executable'; readonly executable: string; readonly packages: readonly string[] }
  | ({ readonly kind: 'script' } & Command);

export interface HandOffRequest {
  readonly updater: UpdaterProgram;
  readonly launch: Command;
  readonly storage: string;
  readonly updates: UpdatePaths;
  readonly installDir: string;
  readonly stagedDir: string;
  readonly oldVersion: string;
  readonly newVersion: string;
  readonly log: Logger;
  /** How long the updater has to confirm that it runs. */
  readonly confirmMs: number;
  /** How long the new version has to prove itself healthy. */
  readonly healthTimeoutMs: number;
}

/**
 * Starts the standalone updater with a job and waits (bounded) until it confirms that it runs. Only
 * then may the agent shut down; if it never confirms, this throws and the agent stays up.
 */
export async function handOff(request: HandOffRequest): Promise<UpdaterJob> {
  const id = randomUUID();
  const job: UpdaterJob = {
    job_id: id,
    install_dir: request.installDir,
    staged_dir: request.stagedDir,
    // Beside the installation: on the same file system, the backup and the swap are renames.
    backup_dir: `${request.installDir}.outpost-backup`,
    old_pid: process.pid,
    old_version: request.oldVersion,
    new_version: request.newVersion,
    launch: { command: request.launch.command, args: [...request.launch.args] },
    storage: request.storage,
    exit_timeout_ms: 30_000,
    health_timeout_ms: request.healthTimeoutMs,
  };
  const files = request.updates;
  const updater = prepareUpdater(request.updater, job);
  const inside = [updater.command, ...updater.args].find((p) => isInside(p, request.installDir));
  if (inside) {
    throw new OutpostError(ErrorCode.UPDATE_HANDOFF, `The updater would run from ${inside}, inside the installation it replaces; it must run from a copy elsewhere.`);
  }
  writeJob(files, job);
  const child = spawnUpdater(updater, ['--job', files.job], job.storage);
  let exited: string | null = null;
  child.once('exit', (code, signal) => {
    exited = signal ? `signal ${signal}` : `exit code ${code}`;
  });
  let spawnError: Error | null = null;
  child.once('error', (error) => {
    spawnError = error;
  });
  child.unref();
  const deadline = Date.now() + request.confirmMs;
  while (!fs.existsSync(files.readyFile(id))) {
    if (spawnError || exited || Date.now() > deadline) {
      const why = spawnError ? describeError(spawnError) : exited ? `it ended (${exited})` : `no confirmation within ${request.confirmMs} ms`;
      if (!exited && child.pid !== undefined) child.kill('SIGKILL');
      // A job that never began leaves nothing behind: not its record, not a 100 MB copy per retry.
      if (readJournal(files.journal(id)).steps.length === 0) fs.rmSync(files.job, { force: true });
      removeQuietly(files.updaterCopy(id));
      throw new OutpostError(ErrorCode.UPDATE_HANDOFF, `The updater did not start: ${why}. The agent stays on ${request.oldVersion}.`);
    }
    await sleep(20);
  }
  request.log.info(`updater running (pid ${child.pid}); handing over`, { job: id });
  return job;
}

/** Hands an unfinished job to the updater's recovery (detached: it outlives this agent, which exits). */
export function startRecovery(updater: UpdaterProgram, job: UpdaterJob): number | undefined {
  const child = spawnUpdater(prepareUpdater(updater, job), ['--job', jobPaths(job).job, '--recover'], job.storage);
  child.on('error', () => undefined);
  child.unref();
  return child.pid;
}

/**
 * The command that runs the updater for this job. A single executable must not run from the files it
 * replaces (Windows cannot replace a running executable), so it runs from a copy in the job's folder
 * (kept if a recovery finds it there already); the new version removes it once the job has ended.
 */
function prepareUpdater(updater: UpdaterProgram, job: UpdaterJob): Command {
  if (updater.kind === 'script') return updater;
  // In the storage folder, whose permissions keep others out (not %TEMP%: a DLL-planting spot).
  const dir = jobPaths(job).updaterCopy(job.job_id);
  const executable = path.join(dir, path.basename(updater.executable));
  if (!fs.existsSync(executable)) {
    const staging = `${dir}.tmp`;
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging, { recursive: true, mode: 0o700 });
    fs.copyFileSync(updater.executable, path.join(staging, path.basename(updater.executable)));
    fs.chmodSync(path.join(staging, path.basename(updater.executable)), 0o700);
    for (const pkg of updater.packages.flatMap(packageWithBindings)) fs.cpSync(pkg.dir, path.join(staging, 'node_modules', pkg.name), { recursive: true, dereference: true });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staging, dir);
  }
  return { command: executable, args: [] };
}

/** What the hand-off reads of a native package's package.json: its prebuilt bindings are optional dependencies. */
const PackageManifest = z.object({ optionalDependencies: z.record(z.string(), z.string()).optional() });

/**
 * A package's folder and those of its installed optional dependencies (the prebuilt binding for this
 * OS), found where this agent loads them from. Resolved at the hand-off, not at every start.
 */
function packageWithBindings(name: string): { name: string; dir: string }[] {
  let manifest: string;
  try {
    manifest = createRequire(import.meta.url).resolve(`${name}/package.json`);
  } catch {
    return []; // not installed: the updater works without it, only less well (see its callers)
  }
  const { optionalDependencies = {} } = PackageManifest.parse(JSON.parse(fs.readFileSync(manifest, 'utf8')));
  const found = [{ name, dir: path.dirname(manifest) }];
  for (const dependency of Object.keys(optionalDependencies)) {
    try {
      found.push({ name: dependency, dir: path.dirname(createRequire(manifest).resolve(`${dependency}/package.json`)) });
    } catch {
      // the binding of another OS or CPU
    }
  }
  return found;
}

/** Best effort: a process just killed may hold its executable a moment longer (Windows); the next job's follower removes it. */
function removeQuietly(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // left for the follower of the next job
  }
}

/**
 * The updater works in the storage folder, not in the agent's working folder, which may be the
 * installation (an installer starts the agent there): Windows does not rename a folder that is some
 * process's working folder, and the updater and the version it starts would hold it.
 */
function spawnUpdater(updater: Command, args: readonly string[], storage: string) {
  // NODE_OPTIONS could make even the single-executable updater load code from disk: not passed on.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env[TestSwitch.HOLD_STATE]; // for the agent that a test started, not for the versions after it
  return spawn(updater.command, [...updater.args, ...args], { detached: true, stdio: 'ignore', env, cwd: storage });
}

function isInside(file: string, dir: string): boolean {
  if (!path.isAbsolute(file)) return false;
  const relative = path.relative(path.resolve(dir), path.resolve(file));
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}
