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
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RUNNING_LINE } from '../app/common/cli-output.js';
import { readText } from '../app/base/durable-file.js';
import { createPlatform } from '../app/main/platform/index.js';
import { buildUpdaterExecutables } from '../tools/sea/build-updater.js';
import { Failure, StoryFailed } from './failure.js';
import { Follower } from './follow.js';
import { Lab, MiB, OUTPOST, RELEASE, REPO_ROOT, SERVER } from './lab.js';
import { Processes, type Spawned, signal, waitOutput, waitUntil, within } from './processes.js';
import { type LiveLine, SILENT, type StoryReporter } from './reporter.js';
import { type Phase, Timeline } from './timeline.js';
import { compareTrees, countFiles, listFiles, sizeOf } from './trees.js';

export const VERSION_A = '1.0.0';
export const VERSION_B = '1.1.0';

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

/** The story's steps, told as they go: the processes, the lab they run in, the timeline they make. */
class Story {
  readonly #lab: Lab;
  readonly #say: StoryReporter;
  readonly #timeline = new Timeline();
  readonly #processes = new Processes();
  readonly #platform = createPlatform();
  readonly #follower: Follower;
  #step = 0;
  #server: Spawned | undefined;
  #serverUrl = '';
  #updaterTold = false;
  #appBBytes = 0;
  #bPid: number | null = null;

  constructor(work: string, say: StoryReporter) {
    this.#lab = new Lab(work);
    this.#say = say;
    this.#follower = new Follower({ lab: this.#lab, timeline: this.#timeline, newVersion: VERSION_B, onLine: (line) => this.#show(line) });
  }

  step(text: string, at?: number): void {
    this.#step++;
    this.#say.step(`${this.#step}. ${text}`, at);
  }

  async run(updaterChoice: StoryOptions['updater']): Promise<StoryResult> {
    const lab = this.#lab;
    this.#say.note(`everything happens in ${lab.work} (paths below are relative to it)`);
    const updater = await this.#takeUpdater(updaterChoice);
    const appA = await this.#releaseA();
    await this.#serve();
    const a = await this.#startA(appA, updater);
    const { appB, downloadBytes } = await this.#takeB(a, appA);
    await this.#checkB(appB, updater);

    this.step('Stop B (SIGTERM; it is not a child of this story) and the server.');
    const bPid = this.#bPid;
    await this.stopB();
    this.#say.ok(`B (pid ${bPid}) shut down and released its lock`);
    this.#follower.stop();
    await this.stopServer();
    this.#say.ok('the server stopped');
    const timeline = this.#timeline;
    return {
      phases: timeline.phases(),
      totalMs: timeline.since('publish', 'commit:end'),
      confirmedMs: timeline.since('publish', 'confirmed'),
      reportedMs: timeline.since('publish', 'report:EVT_UPDATE_SUCCEEDED'),
      updater: updater ? 'executable' : 'script',
      downloadBytes,
      appBytes: this.#appBBytes,
      workDir: lab.work,
    };
  }

  async #takeUpdater(choice: StoryOptions['updater']): Promise<{ executable: string } | null> {
    this.step('The standalone updater, as a release ships it.');
    if (choice === 'script') {
      this.#say.note('the agent runs the updater script (bin/outpost-updater.js), as asked');
      return null;
    }
    if (choice) {
      this.#say.ok(`the updater's single executable, built before: ${choice.executable}`);
      return choice;
    }
    return prepareUpdater(path.join(this.#lab.work, 'updater-build'), this.#say);
  }

  /** Keys, a feed, and version A published into it: A's application folder. */
  async #releaseA(): Promise<string> {
    const say = this.#say;
    const lab = this.#lab;
    this.step("A release manager's desk: signing keys and an empty feed.");
    const keygen = await this.#processes.tool(RELEASE, ['keygen', '--out', lab.keys]);
    say.ok(`outpost-release keygen: ${lab.short(keygen.trim().split('\n')[0] ?? '')}`);

    this.step(`Version A (${VERSION_A}): an application folder, published.`);
    const appA = lab.writeApp(VERSION_A);
    const appBytes = sizeOf(appA);
    const publishedA = await this.#processes.tool(RELEASE, ['publish', '--app', appA, '--version', VERSION_A, '--key', lab.keys, '--feed', lab.feed]);
    say.ok(`${(appBytes / MiB).toFixed(1)} MiB in ${countFiles(appA)} files: main.mjs (the entry: it starts the agent), payload/`);
    say.quote(lab.short(publishedA.trim()));
    return appA;
  }

  async #serve(): Promise<void> {
    this.step('The reference server on a free loopback port.');
    await this.startServer();
    const health = await this.health();
    this.#say.ok(`outpost-server listening on ${this.#serverUrl}; GET /health answers ${JSON.stringify(health)}`);
  }

  /** A installed and started from its installation, until it has checked once and its WebSocket is connected. */
  async #startA(appA: string, updater: { executable: string } | null): Promise<Spawned> {
    const say = this.#say;
    const lab = this.#lab;
    this.step('Install A into install/ and start it from there.');
    fs.cpSync(appA, lab.install, { recursive: true });
    lab.writeHome(this.#serverUrl);
    const env = lab.agentEnv(updater);
    say.note(`$ OUTPOST_HOME=home OUTPOST_INSTALL_DIR=install${updater ? ` OUTPOST_UPDATER_EXE=${lab.short(updater.executable)}` : ''} node install/main.mjs`);
    say.note('  (home/config.json: backend = this server, update.trust_file = keys/root.json, update.hand_off = true)');
    const started = Date.now();
    const a = this.#processes.spawn(process.execPath, [path.join(lab.install, 'main.mjs')], env);
    this.#follower.start();
    const aPid = Number((await waitOutput(a, RUNNING_LINE, 20_000, 'agent A to start'))[1]);
    say.ok(`agent A (pid ${aPid}) is running ${VERSION_A} from install/, IDLE in ${Date.now() - started} ms`);
    await this.until('A to make its first check and connect its WebSocket', 30_000, async () => {
      return lab.log().includes(`no update: ${VERSION_A} is the version`) && ((await this.health()).agents_connected as number) >= 1;
    });
    say.ok('its first check found nothing newer, and its WebSocket is connected (the server counts 1 agent)');
    const statusA = await this.status();
    if (statusA?.version !== VERSION_A || statusA.state !== 'IDLE') throw new Failure(`outpost status did not answer ${VERSION_A}, IDLE: ${JSON.stringify(statusA)}`);
    say.ok('outpost status:');
    say.quote(lab.short(JSON.stringify(statusA)));
    return a;
  }

  /** B published; A takes it by push and hands over; the updater's job ends committed. */
  async #takeB(a: Spawned, appA: string): Promise<{ appB: string; downloadBytes: number }> {
    const say = this.#say;
    const lab = this.#lab;
    const timeline = this.#timeline;
    this.step(`Publish version B (${VERSION_B}); A takes it by push (following logs/outpost.log).`);
    const appB = lab.writeApp(VERSION_B, appA);
    this.#appBBytes = sizeOf(appB);
    timeline.set('publish', Date.now());
    const publishedB = await this.#processes.tool(RELEASE, ['publish', '--app', appB, '--version', VERSION_B, '--key', lab.keys, '--feed', lab.feed]);
    // A publish ends with the rename of timestamp.json into place: the moment the feed changes.
    timeline.set('published', fs.statSync(path.join(lab.feed, 'metadata', 'timestamp.json')).mtimeMs);
    say.ok(`outpost-release publish took ${Date.now() - timeline.milestone('publish')} ms: ${lab.short(publishedB.trim())}`);
    const logBefore = lab.log().length;
    let aDone: { code: number | null } | undefined;
    void a.exited.then((code) => (aDone = { code }));
    const { code: aExit } = await this.until('agent A to hand over and exit', 60_000, () => {
      // A failed update leaves A running (it retries later): say so at once rather than wait.
      const failed = /\[warn\] \[update\] update failed: .*/.exec(lab.log().slice(logBefore));
      if (failed) throw new Failure(`agent A could not take ${VERSION_B}: ${lab.short(failed[0])}`);
      return aDone;
    });
    const aOut = a.output();
    if (aExit !== 0 || !aOut.includes(`stopped (handed over to the updater for ${VERSION_B})`)) {
      throw new Failure(`agent A exited ${aExit} without handing over to the updater; it said:\n${aOut}`);
    }
    const downloadBytes = Number(/downloaded (\d+) bytes for /.exec(lab.log())?.[1] ?? Number.NaN);
    say.ok('A exited 0 once the updater confirmed it runs:');
    say.quote((aOut.split('\n').find((l) => l.includes('stopped (handed over')) ?? '').trim());

    await this.until('the updater to end the job', 60_000, () => timeline.has('outcome'));
    const outcome = this.#follower.outcome;
    if (outcome !== 'committed') throw new Failure(`the updater's job ended ${outcome}: ${this.#follower.outcomeReason ?? ''}`);
    return { appB, downloadBytes };
  }

  /** B answers as the process the updater started, on B's tree byte for byte, its report stored, the job cleaned up. */
  async #checkB(appB: string, updater: { executable: string } | null): Promise<void> {
    const say = this.#say;
    const lab = this.#lab;
    const timeline = this.#timeline;
    const b = await this.until(`outpost status to answer ${VERSION_B}, IDLE`, 30_000, async () => {
      const status = await this.status();
      return status?.version === VERSION_B && status.state === 'IDLE' && status;
    });
    timeline.set('confirmed', Date.now());
    this.#bPid = b.pid as number;

    this.step('B is running and healthy.');
    const launched = this.#follower.launchedPid;
    say.ok(`outpost status: B ${VERSION_B} is IDLE as pid ${b.pid}${b.pid === launched ? ', the process the updater started' : ''}`);
    say.quote(lab.short(JSON.stringify(b)));
    if (b.pid !== launched) throw new Failure(`status answered pid ${b.pid}, not the B the updater launched (pid ${launched})`);
    const mismatch = compareTrees(lab.install, appB);
    if (mismatch) throw new Failure(`install/ is not B: ${mismatch}`);
    const backup = `${lab.install}.outpost-backup`;
    say.ok(`install/ is B's release byte for byte (${countFiles(appB)} files), and the backup is ${fs.existsSync(backup) ? 'STILL THERE' : 'gone'}`);
    if (fs.existsSync(backup)) throw new Failure('the backup of A is still beside the installation after the commit');
    const last = JSON.parse(fs.readFileSync(path.join(lab.home, 'updates', 'last-update.json'), 'utf8'));
    const config = JSON.parse(fs.readFileSync(path.join(lab.home, 'config.json'), 'utf8'));
    if (config.current_version !== VERSION_B) throw new Failure(`config.json says current_version ${config.current_version}`);
    say.ok(`updates/last-update.json: ${last.outcome} ${last.from} -> ${last.to}; config.json: current_version ${config.current_version}`);
    await this.until("the server to receive B's success report", 20_000, () => timeline.has('report:EVT_UPDATE_SUCCEEDED'));
    say.ok(`the server stored B's report EVT_UPDATE_SUCCEEDED (${timeline.since('publish', 'report:EVT_UPDATE_SUCCEEDED')} ms after the publish began)`);
    const updates = path.join(lab.home, 'updates');
    const leftovers = () => listFiles(updates).filter((f) => /[/\\](job\.json|updater-[^/\\]*|health-.*\.json)$/.test(f));
    await this.until('B to clean up after the job', 15_000, () => leftovers().length === 0);
    say.ok(`B cleaned up after the updater: its copy${updater ? ' of the executable' : ''}, the ready file, the health record and job.json are gone (the journal stays)`);
  }

  /** A live line, told in time order; the updater's first line opens the updater's step, and the hand-off sums up A's part. */
  #show(line: LiveLine): void {
    if (line.who === 'updater' && !this.#updaterTold) {
      this.#updaterTold = true;
      this.step('A hands over to the updater: swap, start B, wait for its health (following home/updates/journal-<job>.jsonl).', line.at);
    }
    this.#say.live(line);
    if (line.who === 'A' && line.kind === 'state' && line.text.includes('-> UPDATING_HANDOFF')) {
      const downloaded = Number(/downloaded (\d+) bytes for /.exec(this.#lab.log())?.[1] ?? Number.NaN);
      const pushed = this.#timeline.get('push heard') ?? line.at;
      this.#say.ok(
        `A downloaded ${(downloaded / 1024).toFixed(0)} KiB of the ${(this.#appBBytes / MiB).toFixed(1)} MiB release (${((downloaded * 100) / this.#appBBytes).toFixed(1)}%: metadata and the chunks around the change; everything else comes from install/), verified and staged it: ${line.at - pushed} ms from the push`,
      );
    }
  }

  // --- the server, the agent, stopping -----------------------------------------------------------

  /** Waits for `probe`; a timeout shows the end of the agent's log. */
  until<T>(what: string, timeoutMs: number, probe: () => T | false | undefined | null | Promise<T | false | undefined | null>): Promise<T> {
    return waitUntil(what, timeoutMs, probe, () => `the agent's log ends:\n${this.#lab.short(this.#lab.log().trim().split('\n').slice(-12).join('\n'))}`);
  }

  async startServer(): Promise<void> {
    const lab = this.#lab;
    const server = this.#processes.spawn(process.execPath, [SERVER, '--feed', lab.feed, '--port', '0', '--reports', path.join(lab.work, 'reports.jsonl')], { ...process.env });
    this.#server = server;
    let partial = '';
    server.child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.#follower.onServerLine(line);
    });
    this.#serverUrl = (await waitOutput(server, /listening on (http:\/\/127\.0\.0\.1:\d+)/, 10_000, 'outpost-server to listen'))[1] as string;
  }

  async health(): Promise<Record<string, unknown>> {
    const response = await fetch(`${this.#serverUrl}/health`);
    if (response.status !== 200) throw new Failure(`GET /health answered ${response.status}`);
    return (await response.json()) as Record<string, unknown>;
  }

  /** `outpost status` for the demo's home: the parsed object, or null when no agent answers. */
  async status(): Promise<Record<string, unknown> | null> {
    const { code, stdout } = await this.#processes.run(OUTPOST, ['status'], this.#lab.agentEnv(null), 15_000, 'outpost status');
    if (code !== 0) return null;
    try {
      return JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      throw new Failure(`outpost status printed something that is not JSON: ${stdout}`);
    }
  }

  async stopB(): Promise<void> {
    const pid = this.#bPid;
    if (pid === null) return;
    signal(pid, 'SIGTERM');
    await this.until(`B (pid ${pid}) to exit`, 15_000, () => !this.#platform.isProcessAlive(pid) && !fs.existsSync(path.join(this.#lab.home, 'agent.lock')));
    this.#bPid = null;
  }

  async stopServer(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.child.kill('SIGTERM');
    await within(server.exited, 10_000, 'the server to stop').catch(() => server.child.kill('SIGKILL'));
  }

  /** Stops whatever still runs: on success nothing; after a failure, A, the updater, B (by their recorded pids) and the server. */
  async stopAll(): Promise<void> {
    this.#follower.stop();
    this.#processes.killRunning(this.#server);
    const updates = path.join(this.#lab.home, 'updates');
    const pids = new Set<number>();
    if (this.#bPid !== null) pids.add(this.#bPid);
    const recorded = [path.join(this.#lab.home, 'agent.lock'), ...listFiles(updates).filter((f) => f.endsWith('.ready') || f.endsWith('.lock'))];
    for (const file of recorded) {
      const text = readText(file);
      const pid = Number(/"pid"\s*:\s*(\d+)/.exec(text)?.[1] ?? text.trim());
      if (Number.isInteger(pid) && pid > 0) pids.add(pid);
    }
    const launched = this.#follower.launchedPid;
    if (launched) pids.add(launched);
    for (const pid of pids) if (pid !== process.pid && this.#platform.isProcessAlive(pid)) signal(pid, 'SIGKILL');
    await this.stopServer();
  }
}
