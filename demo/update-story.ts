/**
 * The update story of CONTRACT.md, with the real tools as processes, on loopback, in one temporary
 * folder: signing keys and a feed (`outpost-release keygen`), version A published and served
 * (`outpost-server`), A installed and running (`outpost`, started through the installation's own
 * main.mjs), version B published; the agent hears the push, downloads what A lacks, verifies and
 * stages B, hands over to the standalone updater (the single executable on Linux x64), which swaps
 * the folders, starts B, sees it healthy and commits. Told as it happens through a reporter (the agent's
 * log, the updater's journal and the server's output are followed live), and timed phase by phase.
 * `npm run demo` tells it; the update benchmark runs it quietly and keeps the timings.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RUNNING_LINE } from '../app/common/cli-output.js';
import { DEFAULT_CONFIG } from '../app/main/core/config-schema.js';
import { buildUpdaterExecutables } from '../tools/sea/build-updater.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUTPOST = path.join(REPO_ROOT, 'bin', 'outpost.js');
const RELEASE = path.join(REPO_ROOT, 'bin', 'outpost-release.js');
const SERVER = path.join(REPO_ROOT, 'bin', 'outpost-server.js');

export const VERSION_A = '1.0.0';
export const VERSION_B = '1.1.0';
const MiB = 1024 * 1024;

/** A line of what the processes said, as it happened: `at` is their own clock (epoch ms). */
export interface LiveLine {
  readonly at: number;
  readonly who: 'A' | 'B' | 'updater' | 'server';
  readonly kind: 'state' | 'progress' | 'journal' | 'log' | 'warn';
  readonly text: string;
  readonly progress?: { readonly bytes: number; readonly total: number; readonly percent: number };
}

/** How the story is told. Every method may do nothing (the benchmark's reporter). */
export interface StoryReporter {
  /** A numbered step begins ("3. Publish version B"); `at` when it began earlier than now (epoch ms). */
  step(text: string, at?: number): void;
  /** Something checked and found as it should be. */
  ok(text: string): void;
  /** Something worth saying that is not a check (a fallback, a wait). */
  note(text: string): void;
  /** A short excerpt: a status object, a log line. */
  quote(text: string): void;
  live(line: LiveLine): void;
}

export const SILENT: StoryReporter = { step() {}, ok() {}, note() {}, quote() {}, live() {} };

export interface Phase {
  readonly name: string;
  readonly what: string;
  readonly ms: number;
}

export interface StoryResult {
  /** Consecutive phases from the start of the publish of B to B healthy and committed: they add up to totalMs. */
  readonly phases: readonly Phase[];
  readonly totalMs: number;
  /** After the commit, from outside: `outpost status` answered B in IDLE, and the server stored B's success report (ms from the publish). */
  readonly confirmedMs: number;
  readonly reportedMs: number;
  readonly updater: 'executable' | 'script';
  /** Bytes the agent downloaded for B, and the size of B's application folder. */
  readonly downloadBytes: number;
  readonly appBytes: number;
  /** The temporary folder: removed unless `keep` was asked for. */
  readonly workDir: string;
}

export interface StoryOptions {
  readonly reporter?: StoryReporter;
  /**
   * The updater: a single executable already built (the benchmark builds it once), 'script' for the
   * updater script, or undefined: build the Linux x64 executable here (the script elsewhere).
   */
  readonly updater?: { readonly executable: string } | 'script';
  /** Keep the temporary folder even when the story succeeds. */
  readonly keep?: boolean;
}

/** The story stopped: `message` says where; the temporary folder is kept for a look. */
export class StoryFailed extends Error {
  override name = 'StoryFailed';
  constructor(
    message: string,
    readonly workDir: string,
  ) {
    super(message);
  }
}

class Failure extends Error {}

/** The phases, each ending at a milestone; a phase starts where the previous one ended. */
const PHASES: ReadonlyArray<{ name: string; what: string; until: string }> = [
  { name: 'publish', what: 'outpost-release publish: B signed and written into the feed, timestamp.json last', until: 'published' },
  { name: 'push heard', what: 'the server sees the new timestamp.json and pushes; A hears it on its WebSocket', until: 'push heard' },
  { name: 'check', what: 'TUF refresh, channel pointer, manifest, what A lacks', until: 'state:UPDATING_DOWNLOADING' },
  { name: 'download', what: 'the changed files, hashed as they arrive', until: 'state:UPDATING_VERIFYING' },
  { name: 'verify', what: 'every download against its signed length', until: 'state:UPDATING_STAGING' },
  { name: 'stage', what: "B's complete tree built and checked in updates/", until: 'state:UPDATING_HANDOFF' },
  { name: 'hand-off', what: 'job written, updater copied beside it and started, until it confirms', until: 'wait_old_exit:begin' },
  { name: 'wait_old_exit', what: 'A shuts down and releases its lock', until: 'wait_old_exit:end' },
  { name: 'backup', what: 'installation renamed to <install>.outpost-backup', until: 'backup:end' },
  { name: 'swap', what: 'the staged tree renamed into place', until: 'swap:end' },
  { name: 'launch', what: 'B started, detached', until: 'launch:end' },
  { name: 'health', what: 'B takes the lock, reaches IDLE, writes its health record', until: 'health:end' },
  { name: 'commit', what: 'the point of no return: backup and staged copy removed', until: 'commit:end' },
];

/** Runs the story once. Resolves with the phase timings, or rejects with StoryFailed. */
export async function runUpdateStory(options: StoryOptions = {}): Promise<StoryResult> {
  const say = options.reporter ?? SILENT;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-demo-'));
  const story = new Story(work, say);
  // B and the updater are detached (Ctrl+C does not reach them): an interrupted story stops them too.
  const onSignal = (signal: NodeJS.Signals) => {
    void story
      .stopAll()
      .catch(() => undefined)
      .finally(() => {
        if (!options.keep) fs.rmSync(work, { recursive: true, force: true });
        process.kill(process.pid, signal);
      });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await story.run(options.updater);
    await story.stopAll();
    if (!options.keep) fs.rmSync(work, { recursive: true, force: true });
    return result;
  } catch (error) {
    await story.stopAll().catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    throw new StoryFailed(error instanceof Failure ? message : `unexpected error: ${error instanceof Error ? (error.stack ?? message) : message}`, work);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/**
 * Builds the updater's Linux x64 single executable into `outDir` (cached in .cache/sea/), or returns
 * null where there is none to build (another platform): the agent then runs the updater script.
 */
export async function prepareUpdater(outDir: string, say: StoryReporter = SILENT): Promise<{ executable: string } | null> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    say.note(`the updater's single executable is built for Linux x64 only (this is ${process.platform}-${process.arch}): the agent runs the updater script (bin/outpost-updater.js) instead`);
    return null;
  }
  say.note("building the updater's single executable (Node SEA; cached in .cache/sea/: 10-15 s the first time, a few seconds after)...");
  const built = await buildUpdaterExecutables({ repoRoot: REPO_ROOT, platforms: ['linux'], outDir });
  const exe = built.executables[0];
  if (!exe) throw new Failure('buildUpdaterExecutables built nothing');
  say.ok(`outpost-updater: ${(exe.bytes / MiB).toFixed(0)} MiB, Node ${built.nodeVersion} with the bundled updater; ${exe.fromCache ? `from the cache (${(built.ms / 1000).toFixed(1)} s with the bundling)` : `built in ${(built.ms / 1000).toFixed(1)} s`}`);
  return { executable: exe.path };
}

interface Spawned {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

class Story {
  readonly #work: string;
  readonly #say: StoryReporter;
  readonly #keys: string;
  readonly #feed: string;
  readonly #install: string;
  readonly #home: string;
  #step = 0;
  readonly #milestones = new Map<string, number>();
  readonly #spawned: Spawned[] = [];
  #server: Spawned | undefined;
  #serverUrl = '';
  #follow: NodeJS.Timeout | undefined;
  readonly #pending: Array<{ at: number; emit: () => void }> = [];
  #updaterTold = false;
  #appBBytes = 0;
  #logOffset = 0;
  #logPartial = '';
  #journalFile: string | undefined;
  #journalSeen = 0;
  #bPid: number | null = null;

  constructor(work: string, say: StoryReporter) {
    this.#work = work;
    this.#say = say;
    this.#keys = path.join(work, 'keys');
    this.#feed = path.join(work, 'feed');
    this.#install = path.join(work, 'install');
    this.#home = path.join(work, 'home');
  }

  /** Paths in what is shown are relative to the temporary folder. */
  short(text: string): string {
    return text
      .split(`${this.#work}${path.sep}`)
      .join('')
      .split(this.#work)
      .join('.')
      .split(process.execPath)
      .join('node')
      .replace(/\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '$1…');
  }

  step(text: string, at?: number): void {
    this.#step++;
    this.#say.step(`${this.#step}. ${text}`, at);
  }

  async run(updaterChoice: StoryOptions['updater']): Promise<StoryResult> {
    const say = this.#say;
    say.note(`everything happens in ${this.#work} (paths below are relative to it)`);

    this.step('The standalone updater, as a release ships it.');
    let updater: { executable: string } | null;
    if (updaterChoice === 'script') {
      say.note('the agent runs the updater script (bin/outpost-updater.js), as asked');
      updater = null;
    } else if (updaterChoice) {
      say.ok(`the updater's single executable, built before: ${updaterChoice.executable}`);
      updater = updaterChoice;
    } else {
      updater = await prepareUpdater(path.join(this.#work, 'updater-build'), say);
    }

    this.step('A release manager\'s desk: signing keys and an empty feed.');
    const keygen = await this.tool(RELEASE, ['keygen', '--out', this.#keys]);
    say.ok(`outpost-release keygen: ${this.short(keygen.trim().split('\n')[0] ?? '')}`);

    this.step(`Version A (${VERSION_A}): an application folder, published.`);
    const appA = this.writeApp(VERSION_A);
    const appBytes = sizeOf(appA);
    const publishedA = await this.tool(RELEASE, ['publish', '--app', appA, '--version', VERSION_A, '--key', this.#keys, '--feed', this.#feed]);
    say.ok(`${(appBytes / MiB).toFixed(1)} MiB in ${countFiles(appA)} files: main.mjs (the entry: it starts the agent), payload/`);
    say.quote(this.short(publishedA.trim()));

    this.step('The reference server on a free loopback port.');
    await this.startServer();
    const health = await this.health();
    say.ok(`outpost-server listening on ${this.#serverUrl}; GET /health answers ${JSON.stringify(health)}`);

    this.step('Install A into install/ and start it from there.');
    fs.cpSync(appA, this.#install, { recursive: true });
    this.writeHome();
    const env = this.agentEnv(updater);
    say.note(`$ OUTPOST_HOME=home OUTPOST_INSTALL_DIR=install${updater ? ` OUTPOST_UPDATER_EXE=${this.short(updater.executable)}` : ''} node install/main.mjs`);
    say.note('  (home/config.json: backend = this server, update.trust_file = keys/root.json, update.hand_off = true)');
    const started = Date.now();
    const a = this.spawn(process.execPath, [path.join(this.#install, 'main.mjs')], env);
    this.startFollowing();
    const aPid = Number((await this.waitOutput(a, RUNNING_LINE, 20_000, 'agent A to start'))[1]);
    say.ok(`agent A (pid ${aPid}) is running ${VERSION_A} from install/, IDLE in ${Date.now() - started} ms`);
    await this.until('A to make its first check and connect its WebSocket', 30_000, async () => {
      return this.log().includes(`no update: ${VERSION_A} is the version`) && ((await this.health()).agents_connected as number) >= 1;
    });
    say.ok('its first check found nothing newer, and its WebSocket is connected (the server counts 1 agent)');
    const statusA = await this.status();
    if (statusA?.version !== VERSION_A || statusA.state !== 'IDLE') throw new Failure(`outpost status did not answer ${VERSION_A}, IDLE: ${JSON.stringify(statusA)}`);
    say.ok('outpost status:');
    say.quote(this.short(JSON.stringify(statusA)));

    this.step(`Publish version B (${VERSION_B}); A takes it by push (following logs/outpost.log).`);
    const appB = this.writeApp(VERSION_B, appA);
    this.#appBBytes = sizeOf(appB);
    this.#milestones.set('publish', Date.now());
    const publishedB = await this.tool(RELEASE, ['publish', '--app', appB, '--version', VERSION_B, '--key', this.#keys, '--feed', this.#feed]);
    // A publish ends with the rename of timestamp.json into place: the moment the feed changes.
    this.#milestones.set('published', fs.statSync(path.join(this.#feed, 'metadata', 'timestamp.json')).mtimeMs);
    say.ok(`outpost-release publish took ${Date.now() - this.milestone('publish')} ms: ${this.short(publishedB.trim())}`);
    const logBefore = this.log().length;
    let aDone: { code: number | null } | undefined;
    void a.exited.then((code) => (aDone = { code }));
    const { code: aExit } = await this.until('agent A to hand over and exit', 60_000, () => {
      // A failed update leaves A running (it retries later): say so at once rather than wait.
      const failed = /\[warn\] \[update\] update failed: .*/.exec(this.log().slice(logBefore));
      if (failed) throw new Failure(`agent A could not take ${VERSION_B}: ${this.short(failed[0])}`);
      return aDone;
    });
    const aOut = a.output();
    if (aExit !== 0 || !aOut.includes(`stopped (handed over to the updater for ${VERSION_B})`)) {
      throw new Failure(`agent A exited ${aExit} without handing over to the updater; it said:\n${aOut}`);
    }
    const downloadBytes = Number(/to download \((\d+) bytes\)/.exec(this.log())?.[1] ?? Number.NaN);
    say.ok('A exited 0 once the updater confirmed it runs:');
    say.quote((aOut.split('\n').find((l) => l.includes('stopped (handed over')) ?? '').trim());

    await this.until('the updater to end the job', 60_000, () => this.#milestones.has('outcome'));
    const outcome = this.#lastOutcome;
    if (outcome !== 'committed') throw new Failure(`the updater's job ended ${outcome}: ${this.#outcomeReason ?? ''}`);
    const b = await this.until(`outpost status to answer ${VERSION_B}, IDLE`, 30_000, async () => {
      const status = await this.status();
      return status?.version === VERSION_B && status.state === 'IDLE' && status;
    });
    this.#milestones.set('confirmed', Date.now());
    this.#bPid = b.pid as number;

    this.step('B is running and healthy.');
    const launched = this.#launchedPid;
    say.ok(`outpost status: B ${VERSION_B} is IDLE as pid ${b.pid}${b.pid === launched ? ', the process the updater started' : ''}`);
    say.quote(this.short(JSON.stringify(b)));
    if (b.pid !== launched) throw new Failure(`status answered pid ${b.pid}, not the B the updater launched (pid ${launched})`);
    const mismatch = compareTrees(this.#install, appB);
    if (mismatch) throw new Failure(`install/ is not B: ${mismatch}`);
    say.ok(`install/ is B's release byte for byte (${countFiles(appB)} files), and the backup is ${fs.existsSync(`${this.#install}.outpost-backup`) ? 'STILL THERE' : 'gone'}`);
    if (fs.existsSync(`${this.#install}.outpost-backup`)) throw new Failure('the backup of A is still beside the installation after the commit');
    const last = JSON.parse(fs.readFileSync(path.join(this.#home, 'updates', 'last-update.json'), 'utf8'));
    const config = JSON.parse(fs.readFileSync(path.join(this.#home, 'config.json'), 'utf8'));
    if (config.current_version !== VERSION_B) throw new Failure(`config.json says current_version ${config.current_version}`);
    say.ok(`updates/last-update.json: ${last.outcome} ${last.from} -> ${last.to}; config.json: current_version ${config.current_version}`);
    await this.until('the server to receive B\'s success report', 20_000, () => this.#milestones.has('report:EVT_UPDATE_SUCCEEDED'));
    say.ok(`the server stored B's report EVT_UPDATE_SUCCEEDED (${this.since('publish', 'report:EVT_UPDATE_SUCCEEDED')} ms after the publish began)`);
    const updates = path.join(this.#home, 'updates');
    const leftovers = () => listFiles(updates).filter((f) => /[/\\](job\.json|updater-[^/\\]*|health-.*\.json)$/.test(f));
    await this.until('B to clean up after the job', 15_000, () => leftovers().length === 0);
    say.ok(`B cleaned up after the updater: its copy${updater ? ' of the executable' : ''}, the ready file, the health record and job.json are gone (the journal stays)`);

    this.step('Stop B (SIGTERM; it is not a child of this story) and the server.');
    await this.stopB();
    say.ok(`B (pid ${b.pid}) shut down and released its lock`);
    this.stopFollowing();
    await this.stopServer();
    say.ok('the server stopped');
    return {
      phases: this.phases(),
      totalMs: this.since('publish', 'commit:end'),
      confirmedMs: this.since('publish', 'confirmed'),
      reportedMs: this.since('publish', 'report:EVT_UPDATE_SUCCEEDED'),
      updater: updater ? 'executable' : 'script', downloadBytes, appBytes: sizeOf(appB), workDir: this.#work };
  }

  phases(): Phase[] {
    const phases: Phase[] = [];
    let from = this.milestone('publish');
    for (const { name, what, until } of PHASES) {
      const to = this.milestone(until);
      // A milestone seen before the previous one (the push can arrive before the publishing process has
      // exited) ends a phase of 0 ms; the phases still add up to the total.
      phases.push({ name, what, ms: Math.max(0, to - from) });
      from = Math.max(from, to);
    }
    return phases;
  }

  milestone(name: string): number {
    const at = this.#milestones.get(name);
    if (at === undefined) throw new Failure(`no time recorded for "${name}"`);
    return at;
  }

  since(from: string, to: string): number {
    return this.milestone(to) - this.milestone(from);
  }

  // --- the application, the home --------------------------------------------------------------

  /**
   * An application folder: package.json, main.mjs (imports this checkout's bin/outpost.js, so that
   * the launch command runs whatever is installed), README, and payload: 4 MiB that B keeps and 1.5 MiB
   * that B replaces (random bytes: incompressible, so the delta is plain to see).
   */
  writeApp(version: string, previous?: string): string {
    const dir = path.join(this.#work, 'apps', version);
    fs.mkdirSync(path.join(dir, 'payload'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: 'outpost-demo-app', version, type: 'module', main: 'main.mjs' }, null, 2)}\n`);
    fs.writeFileSync(path.join(dir, 'main.mjs'), `// The installed entry point: starts the agent.\nimport ${JSON.stringify(pathToFileURL(OUTPOST).href)};\n`);
    fs.writeFileSync(path.join(dir, 'README.txt'), `Outpost demo application, version ${version}.\n`);
    for (let i = 0; i < 4; i++) {
      const file = path.join('payload', `assets-${i}.bin`);
      if (previous) fs.copyFileSync(path.join(previous, file), path.join(dir, file));
      else fs.writeFileSync(path.join(dir, file), crypto.randomBytes(MiB));
    }
    fs.writeFileSync(path.join(dir, 'payload', 'engine.bin'), crypto.randomBytes(1.5 * MiB));
    return dir;
  }

  writeHome(): void {
    fs.mkdirSync(this.#home, { mode: 0o700 });
    const ws = `${this.#serverUrl.replace(/^http/, 'ws')}/ws`;
    const config = {
      ...DEFAULT_CONFIG,
      backend: { url: this.#serverUrl, ws_url: ws },
      update: { ...DEFAULT_CONFIG.update, hand_off: true, poll_interval_s: 3600, trust_file: path.join(this.#keys, 'root.json') },
    };
    fs.writeFileSync(path.join(this.#home, 'config.json'), JSON.stringify(config, null, 2));
  }

  agentEnv(updater: { executable: string } | null): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, OUTPOST_HOME: this.#home, OUTPOST_INSTALL_DIR: this.#install };
    for (const name of ['OUTPOST_LOG_LEVEL', 'OUTPOST_UPDATER_EXE', 'OUTPOST_UPDATER_TEST_CRASH_AT', 'OUTPOST_TEST_HOLD_STATE']) delete env[name];
    if (updater) env.OUTPOST_UPDATER_EXE = updater.executable;
    return env;
  }

  // --- processes --------------------------------------------------------------------------------

  spawn(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Spawned {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (output += d));
    const exited = new Promise<number | null>((resolve) => {
      child.on('error', (error) => {
        output += `\n${error.message}`;
        resolve(null);
      });
      child.on('close', (code) => resolve(code));
    });
    const spawned = { child, output: () => output, exited };
    this.#spawned.push(spawned);
    return spawned;
  }

  /** A tool that runs to its end (outpost-release): its stdout, or a failure with what it said. */
  async tool(script: string, args: readonly string[]): Promise<string> {
    const run = this.spawn(process.execPath, [script, ...args], { ...process.env });
    let stdout = '';
    run.child.stdout?.on('data', (d: string) => (stdout += d));
    const code = await this.within(run.exited, 60_000, `${path.basename(script)} ${args[0]}`);
    if (code !== 0) throw new Failure(`${path.basename(script, '.js')} ${args[0]} exited ${code}:\n${run.output()}`);
    return stdout;
  }

  async startServer(): Promise<void> {
    const server = this.spawn(process.execPath, [SERVER, '--feed', this.#feed, '--port', '0', '--reports', path.join(this.#work, 'reports.jsonl')], { ...process.env });
    this.#server = server;
    let partial = '';
    server.child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.onServerLine(line);
    });
    this.#serverUrl = (await this.waitOutput(server, /listening on (http:\/\/127\.0\.0\.1:\d+)/, 10_000, 'outpost-server to listen'))[1] as string;
  }

  async health(): Promise<Record<string, unknown>> {
    const response = await fetch(`${this.#serverUrl}/health`);
    if (response.status !== 200) throw new Failure(`GET /health answered ${response.status}`);
    return (await response.json()) as Record<string, unknown>;
  }

  /** `outpost status` for the demo's home: the parsed object, or null when no agent answers. */
  async status(): Promise<Record<string, unknown> | null> {
    const run = this.spawn(process.execPath, [OUTPOST, 'status'], this.agentEnv(null));
    let stdout = '';
    run.child.stdout?.on('data', (d: string) => (stdout += d));
    const code = await this.within(run.exited, 15_000, 'outpost status');
    if (code !== 0) return null;
    try {
      return JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      throw new Failure(`outpost status printed something that is not JSON: ${stdout}`);
    }
  }

  async waitOutput(run: Spawned, pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
    let exited = false;
    void run.exited.then(() => (exited = true));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = run.output().match(pattern);
      if (match) return match;
      if (exited || Date.now() > deadline) throw new Failure(`${exited ? 'the process exited' : 'timed out'} waiting for ${what}; it said:\n${run.output()}`);
      await sleep(10);
    }
  }

  async until<T>(what: string, timeoutMs: number, probe: () => T | false | undefined | null | Promise<T | false | undefined | null>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) throw new Failure(`timed out after ${timeoutMs / 1000} s waiting for ${what}; the agent's log ends:\n${this.short(this.log().trim().split('\n').slice(-12).join('\n'))}`);
      await sleep(20);
    }
  }

  async within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Failure(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)), timeoutMs);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async stopB(): Promise<void> {
    const pid = this.#bPid;
    if (pid === null) return;
    signal(pid, 'SIGTERM');
    await this.until(`B (pid ${pid}) to exit`, 15_000, () => !isRunning(pid) && !fs.existsSync(path.join(this.#home, 'agent.lock')));
    this.#bPid = null;
  }

  async stopServer(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.child.kill('SIGTERM');
    await this.within(server.exited, 10_000, 'the server to stop').catch(() => server.child.kill('SIGKILL'));
  }

  /** Stops whatever still runs: on success nothing; after a failure, A, the updater, B (by their recorded pids) and the server. */
  async stopAll(): Promise<void> {
    this.stopFollowing();
    for (const run of this.#spawned) if (run !== this.#server && run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    const updates = path.join(this.#home, 'updates');
    const pids = new Set<number>();
    if (this.#bPid !== null) pids.add(this.#bPid);
    const recorded = [path.join(this.#home, 'agent.lock'), ...listFiles(updates).filter((f) => f.endsWith('.ready') || f.endsWith('.lock'))];
    for (const file of recorded) {
      const text = readText(file);
      const pid = Number(/"pid"\s*:\s*(\d+)/.exec(text)?.[1] ?? text.trim());
      if (Number.isInteger(pid) && pid > 0) pids.add(pid);
    }
    if (this.#launchedPid) pids.add(this.#launchedPid);
    for (const pid of pids) if (pid !== process.pid && isRunning(pid)) signal(pid, 'SIGKILL');
    await this.stopServer();
  }

  // --- following the log, the journal and the server ---------------------------------------------

  log(): string {
    return readText(path.join(this.#home, 'logs', 'outpost.log'));
  }

  startFollowing(): void {
    this.#follow = setInterval(() => this.poll(), 15);
  }

  stopFollowing(): void {
    if (this.#follow) this.poll();
    clearInterval(this.#follow);
    this.#follow = undefined;
  }

  /** New log lines and journal entries since the last look, told in the order they happened. */
  poll(): void {
    // The journal first: its launch entry tells A's log lines from B's.
    this.readJournal();
    this.readLog();
    this.#pending.sort((x, y) => x.at - y.at);
    for (const item of this.#pending.splice(0)) item.emit();
  }

  /** A live line, told in time order; the updater's first line opens the updater's step, and the hand-off sums up A's part. */
  show(line: LiveLine): void {
    this.#pending.push({
      at: line.at,
      emit: () => {
        if (line.who === 'updater' && !this.#updaterTold) {
          this.#updaterTold = true;
          this.step('A hands over to the updater: swap, start B, wait for its health (following home/updates/journal-<job>.jsonl).', line.at);
        }
        this.#say.live(line);
        if (line.who === 'A' && line.kind === 'state' && line.text.includes('-> UPDATING_HANDOFF')) {
          const downloaded = Number(/to download \((\d+) bytes\)/.exec(this.log())?.[1] ?? Number.NaN);
          const pushed = this.#milestones.get('push heard') ?? line.at;
          this.#say.ok(`A downloaded ${(downloaded / MiB).toFixed(2)} MiB of the ${(this.#appBBytes / MiB).toFixed(1)} MiB release (the unchanged files come from install/), verified and staged it: ${line.at - pushed} ms from the push`);
        }
      },
    });
  }

  readLog(): void {
    const file = path.join(this.#home, 'logs', 'outpost.log');
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < this.#logOffset) this.#logOffset = 0; // rotated
      if (size === this.#logOffset) return;
      const buffer = Buffer.alloc(size - this.#logOffset);
      fs.readSync(fd, buffer, 0, buffer.length, this.#logOffset);
      this.#logOffset = size;
      const lines = (this.#logPartial + buffer.toString('utf8')).split('\n');
      this.#logPartial = lines.pop() ?? '';
      for (const line of lines) this.onLogLine(line);
    } finally {
      fs.closeSync(fd);
    }
  }

  onLogLine(line: string): void {
    const match = /^\[(\S+)\] \[(\w+)\] (?:\[([\w.-]+)\] )?(.*)$/.exec(line);
    if (!match) return;
    const at = Date.parse(match[1] as string);
    const level = match[2] as string;
    const scope = match[3] ?? '';
    const text = this.short(match[4] as string);
    const launched = this.#milestones.get('launch:begin');
    const who = scope.startsWith('updater') ? 'updater' : launched !== undefined && at >= launched ? 'B' : 'A';
    const updating = this.#milestones.has('publish');
    const state = /^state (\S+) -> (\S+): (.*)$/.exec(text);
    if (state) {
      const key = `${who === 'B' ? 'B:' : ''}state:${state[2]}`;
      if (updating && !this.#milestones.has(key)) this.#milestones.set(key, at);
      if (updating) this.show({ at, who, kind: 'state', text });
      return;
    }
    const progress = /^UPDATING_DOWNLOADING: (\d+)% \((\d+) of (\d+) bytes\)/.exec(text);
    if (progress) {
      this.show({ at, who, kind: 'progress', text, progress: { percent: Number(progress[1]), bytes: Number(progress[2]), total: Number(progress[3]) } });
      return;
    }
    if (/^push: agent:update_required/.test(text) && updating && !this.#milestones.has('push heard')) this.#milestones.set('push heard', at);
    if (!updating) return;
    if ((level === 'warn' || level === 'error') && !/update\.trust_file/.test(text)) {
      this.show({ at, who, kind: 'warn', text: `${level}: ${text}` });
      return;
    }
    const shown = [
      /^push: /,
      /^update \S+ -> \S+: \d+ files/,
      /staged complete/,
      /^updater running/,
      /^started .* \(pid \d+\)$/,
      /^Outpost \S+ starting/,
      /^current_version /,
      /^told the updater/,
      /committed/,
      /^updater done/,
    ];
    if (shown.some((p) => p.test(text))) this.show({ at, who, kind: 'log', text: text.replace(/ storage=\S+| storage_source=\S+| elevated=\S+/g, '') });
  }

  #lastOutcome: string | undefined;
  #outcomeReason: string | undefined;
  #launchedPid: number | undefined;
  readonly #begun = new Map<string, number>();

  readJournal(): void {
    const updates = path.join(this.#home, 'updates');
    this.#journalFile ??= listFiles(updates).find((f) => /journal-.*\.jsonl$/.test(f));
    if (!this.#journalFile) return;
    const lines = readText(this.#journalFile).split('\n');
    // Whole lines only: the last one may be half-written.
    const complete = lines.slice(0, -1);
    for (const line of complete.slice(this.#journalSeen)) {
      let entry: { step: string; phase: string; at: string; detail?: Record<string, unknown> };
      try {
        entry = JSON.parse(line);
      } catch {
        continue;
      }
      const at = Date.parse(entry.at);
      const key = `${entry.step}:${entry.phase}`;
      if (!this.#milestones.has(key)) this.#milestones.set(key, at);
      if (entry.phase === 'begin') this.#begun.set(entry.step, at);
      const took = entry.phase !== 'begin' && this.#begun.has(entry.step) ? ` (${at - (this.#begun.get(entry.step) as number)} ms)` : '';
      let text = `${entry.step} ${entry.phase === 'begin' ? '...' : entry.phase === 'end' ? `done${took}` : `FAILED${took}: ${entry.detail?.message ?? ''}`}`;
      if (entry.step === 'launch' && entry.phase === 'end') {
        this.#launchedPid = Number(entry.detail?.pid);
        text += `: B is pid ${this.#launchedPid}`;
      }
      if (entry.step === 'outcome') {
        this.#lastOutcome = String(entry.detail?.outcome);
        this.#outcomeReason = entry.detail?.reason ? String(entry.detail.reason) : undefined;
        this.#milestones.set('outcome', at);
        text = `outcome: ${this.#lastOutcome}${this.#outcomeReason ? ` (${this.#outcomeReason})` : ''}`;
      }
      this.show({ at, who: 'updater', kind: 'journal', text: `journal: ${text}` });
    }
    this.#journalSeen = Math.max(this.#journalSeen, complete.length);
  }

  onServerLine(line: string): void {
    const match = /^(\d{4}-\d\d-\d\dT\S+Z) (.*)$/.exec(line);
    if (!match || !this.#milestones.has('publish')) return;
    const at = Date.parse(match[1] as string);
    const text = this.short(match[2] as string);
    if (/feed version \d+ published: pushed to/.test(text)) this.#milestones.set('server pushed', at);
    const report = /^reports: stored \S+ \((\w+) from agent \S+ (\S+)\)/.exec(text);
    if (report && report[2] === VERSION_B) this.#milestones.set(`report:${report[1]}`, at);
    this.show({ at, who: 'server', kind: 'log', text });
  }
}

// --- small helpers ------------------------------------------------------------------------------------

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function listFiles(dir: string): string[] {
  try {
    return fs.readdirSync(dir).map((name) => path.join(dir, name));
  } catch {
    return [];
  }
}

function walk(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

function sizeOf(dir: string): number {
  return walk(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

function countFiles(dir: string): number {
  return walk(dir).length;
}

/** null when both folders hold the same files with the same bytes, else what differs. */
function compareTrees(actual: string, expected: string): string | null {
  const a = walk(actual);
  const e = walk(expected);
  if (a.join('\n') !== e.join('\n')) return `files [${a.join(', ')}] instead of [${e.join(', ')}]`;
  const hash = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const differ = a.filter((f) => hash(path.join(actual, f)) !== hash(path.join(expected, f)));
  return differ.length ? `${differ.join(', ')} differ` : null;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/** Alive and not a zombie (a process whose parent is gone may wait a while to be reaped). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === '') return true; // no /proc: alive is all there is to know
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z';
}
