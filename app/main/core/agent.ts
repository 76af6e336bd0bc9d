import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { type AgentState, isUpdatingState } from '../../common/agent-state.js';
import { ExitCode } from '../../common/exit-codes.js';
import type { IpcCommand, StatusData } from '../../common/ipc.js';
import type { Platform } from '../platform/index.js';
import { loadConfig, readConfig, writeConfig } from './config.js';
import type { Config } from './config-schema.js';
import { writeFileAtomic } from './atomic-file.js';
import { describeError, ErrorCode, OutpostError } from './errors.js';
import { InstanceLock } from './instance-lock.js';
import { loadOrCreateIpcSecret } from './ipc-secret.js';
import { type CommandHandler, IpcServer } from './ipc-server.js';
import { Lifetime } from './lifetime.js';
import type { ErrorReporter, ReportContext } from './error-reports.js';
import { type Command, startRecovery, type UpdaterProgram } from './update/handoff.js';
import { readJob, type UnfinishedJob, unfinishedJob, writeHealthRecord } from './update/job-journal.js';
import type { UpdateService } from './update/update-service.js';
import { createFileLogger, isLogLevel, LOG_LEVELS, type LogLevel, type RootLogger } from './logger.js';
import { StateMachine } from './state-machine.js';
import { locateStorage, prepareStorage, type StoragePaths } from './storage.js';

/** How long shutdown may spend sending the error reports still buffered (a dead backend must not hold it). */
const REPORTS_FLUSH_AT_SHUTDOWN_MS = 2_000;

export interface AgentOptions {
  readonly platform: Platform;
  readonly env: NodeJS.ProcessEnv;
  /** This program's version (package.json), recorded as config `current_version`. */
  readonly version: string;
  readonly now: () => Date;
  /** Echo log lines at or above this level to stderr (the foreground command), or not. */
  readonly stderrLogLevel: LogLevel | false;
  /** How long to wait for a live holder to release the lock (`--force`); 0: do not wait. */
  readonly waitForLockMs?: number;
  /** Where this version is installed: the update pipeline takes unchanged files from there. Without it, no updates. */
  readonly installDir?: string;
  /** The TUF root built into this installation; config update.trust_file replaces it in tests and the demo. */
  readonly trustedRootFile?: string | null;
  /** How to start the standalone updater, and how it starts the installed version afterwards. Without them, a staged version waits. */
  readonly updater?: UpdaterProgram;
  readonly launch?: Command;
  /** Randomness for jitter (tests may pin it). */
  readonly random?: () => number;
}

export interface AgentStopped {
  readonly exitCode: ExitCode;
  readonly reason: string;
}

/**
 * The agent: builds the pieces in order, runs the state machine, and is the one place that shuts
 * everything down, in reverse order of start-up. Both shells (the `outpost` command and Electron)
 * build it the same way.
 */
export class Agent {
  readonly state: StateMachine;
  readonly paths: StoragePaths;
  readonly log: RootLogger;
  readonly startedAt: Date;
  readonly stopped: Promise<AgentStopped>;
  #config: Config;
  #lock: InstanceLock | undefined;
  readonly #lifetime: Lifetime;
  readonly #options: AgentOptions;
  readonly #elevated: boolean;
  #resolveStopped!: (stopped: AgentStopped) => void;
  #agentId = '';
  /** Error reports and updates, loaded once the agent is IDLE: start-up does not wait for HTTP, TUF and WebSocket code. */
  #backend: Promise<void> = Promise.resolve();
  #reporter: ErrorReporter | undefined;
  #updates: UpdateService | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(options: AgentOptions, elevated: boolean, paths: StoragePaths, log: RootLogger, config: Config, lifetime: Lifetime) {
    this.#options = options;
    this.#elevated = elevated;
    this.paths = paths;
    this.log = log;
    this.#config = config;
    this.#lifetime = lifetime;
    this.startedAt = options.now();
    this.state = new StateMachine(log.child('state'), options.now);
    this.stopped = new Promise((resolve) => {
      this.#resolveStopped = resolve;
    });
  }

  /**
   * Starts the agent up to IDLE. Throws an OutpostError (with its exit code) when it must not run:
   * unsafe storage, a broken config, or another live instance.
   */
  static async start(options: AgentOptions): Promise<Agent> {
    const { platform, env, version, now } = options;
    const envLevel = env.OUTPOST_LOG_LEVEL;
    if (envLevel !== undefined && !isLogLevel(envLevel)) {
      throw new OutpostError(ErrorCode.CONFIG_INVALID, `OUTPOST_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, not "${envLevel}".`);
    }

    const elevated = platform.isElevated();
    const location = locateStorage(platform, env, elevated);
    const { paths, security } = prepareStorage(platform, location, elevated);

    const log = createFileLogger({ dir: paths.logs, level: envLevel ?? 'info', stderrLevel: options.stderrLogLevel });
    const lifetime = new Lifetime();
    lifetime.add('log', () => log.info('stopped'));
    log.info(`Outpost ${version} starting`, { pid: process.pid, storage: paths.root, storage_source: location.source, elevated });
    log.info(`storage ${security.created ? 'created' : 'ready'}: ${security.permissions}`, { tightened: security.tightened.length ? security.tightened : undefined });

    try {
      // Read-only until the lock is ours: two starts at once must not both write config.json.
      const preview = readConfig(paths.config);
      log.setLevel(envLevel ?? preview.config.log_level);
      const agent = new Agent(options, elevated, paths, log, preview.config, lifetime);
      await agent.#takeLock();
      const proving = agent.#checkUnfinishedUpdate();
      agent.#config = loadConfig(paths.config, log.child('config'), now).config;
      agent.#recordVersion();
      agent.#agentId = readOrCreateAgentId(paths.agentId);
      await agent.#listen();
      agent.state.setState('IDLE', 'start-up complete');
      if (proving) {
        writeHealthRecord(proving.job, version, now());
        log.info(`told the updater that ${version} is healthy (job ${proving.job.job_id})`);
      }
      agent.#backend = agent.#startBackend().catch((error: unknown) => {
        log.error(`error reports and updates could not start: ${describeError(error)}`);
      });
      return agent;
    } catch (error) {
      await lifetime.dispose(log);
      throw error;
    }
  }

  get config(): Config {
    return this.#config;
  }

  get currentState(): AgentState {
    return this.state.state;
  }

  /**
   * The one shutdown path: every way of stopping (signal, lost lock, fatal error, later --force and
   * the updater's hand-off) comes here. Idempotent; resolves `stopped` when everything is down.
   */
  stop(reason: string, exitCode: ExitCode = ExitCode.OK): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.state.state !== 'SHUTTING_DOWN') this.state.setState('SHUTTING_DOWN', reason);
      // Whatever it registered is then undone with the rest.
      await this.#backend;
      await this.#lifetime.dispose(this.log);
      this.#resolveStopped({ exitCode, reason });
    })();
    return this.#stopping;
  }

  /** Last resort for exit paths that skip `stop` (process.exit elsewhere): synchronous. */
  releaseLockNow(): void {
    this.#lock?.release();
  }

  async #takeLock(): Promise<void> {
    const lock = await InstanceLock.acquire({
      file: this.paths.lock,
      platform: this.#options.platform,
      log: this.log.child('lock'),
      version: this.#options.version,
      heartbeatMs: this.#config.lock.heartbeat_ms,
      staleMs: this.#config.lock.stale_ms,
      now: this.#options.now,
      onCompromised: (reason) => void this.stop(`lock lost: ${reason}`, ExitCode.LOCK_HELD),
    }, this.#options.waitForLockMs ?? 0);
    this.#lock = lock;
    this.#lifetime.add('lock', () => lock.release());
  }

  async #listen(): Promise<void> {
    const endpoint = this.#options.platform.ipcEndpoint(this.paths.root);
    const secret = loadOrCreateIpcSecret({
      storageRoot: this.paths.root,
      scope: endpoint.scope,
      elevated: this.#elevated,
      credentials: this.#options.platform.credentialStore(),
      log: this.log.child('secret'),
    });
    const server = await IpcServer.listen({
      endpoint: endpoint.path,
      endpointIsFile: endpoint.isFile,
      secret: secret.value,
      log: this.log.child('ipc'),
      handle: this.#handleCommand,
    });
    this.#lifetime.add('IPC server', () => server.close());
  }

  /** The one way the agent reports an error to the backend (buffered on disk while it is unreachable). */
  report(code: string, message: string, context?: ReportContext): Promise<void> {
    return this.#reporter?.report(code, message, context) ?? Promise.resolve();
  }

  /**
   * An update job that has not ended. Interrupted (its updater gone): it is finished or undone by the
   * updater before any agent runs, so this one starts the recovery and does not run (exit 3); the
   * recovery starts the installed version when it is done. In progress, with this version as the new
   * one: returned, this agent is the version proving itself (it writes the health record at IDLE).
   */
  #checkUnfinishedUpdate(): UnfinishedJob | null {
    const unfinished = unfinishedJob(this.paths.updates, this.#options.platform);
    if (!unfinished) return null;
    const { job, jobFile, at } = unfinished;
    if (unfinished.kind === 'in_progress') return job.new_version === this.#options.version ? unfinished : null;
    const updater = this.#options.updater;
    if (!updater) {
      this.log.error(`an update (${job.old_version} -> ${job.new_version}) was interrupted at ${at}, and this agent has no updater to recover it`);
      return null;
    }
    const pid = startRecovery(updater, job, jobFile);
    this.log.warn(`an update (${job.old_version} -> ${job.new_version}) was interrupted at ${at}; the updater (pid ${pid}) finishes or undoes it, then starts the installed version`);
    throw new OutpostError(
      ErrorCode.UPDATE_RECOVERING,
      `An interrupted update (${job.old_version} -> ${job.new_version}) is being recovered; the installed version starts when that is done.`,
    );
  }

  async #startBackend(): Promise<void> {
    const [{ ErrorReporter }, { HttpReportSender }, { UpdateService }, { handOff }, { JobFollower }, { default: axios }] = await Promise.all([
      import('./error-reports.js'),
      import('./report-sender.js'),
      import('./update/update-service.js'),
      import('./update/handoff.js'),
      import('./update/job-follower.js'),
      import('axios'),
    ]);
    if (this.#stopping) return;
    this.#reporter = new ErrorReporter({
      file: this.paths.errorReports,
      identity: () => ({ agent_id: this.#agentId, agent_version: this.#options.version, state: this.state.state }),
      send: new HttpReportSender({ baseUrl: this.#config.backend.url, timeoutMs: 10_000, userAgent: `Outpost/${this.#options.version}` }),
      log: this.log.child('reports'),
      now: this.#options.now,
    });
    const reporter = this.#reporter;
    // Closed after everything that reports through it; what it cannot send in time waits on disk for the next start.
    this.#lifetime.add('error reports', () => reporter.close(REPORTS_FLUSH_AT_SHUTDOWN_MS));
    if (this.#reporter.pending > 0) {
      this.log.info(`${this.#reporter.pending} error report(s) buffered from before (or queued by the updater); sending them now`);
      void this.#reporter.flush();
    }
    const lastJob = readJob(this.paths.updates);
    if (lastJob) {
      const follower = new JobFollower({
        ...lastJob,
        version: this.#options.version,
        platform: this.#options.platform,
        log: this.log.child('update'),
        updater: this.#options.updater,
        report: (code, message, context) => this.report(code, message, context),
      });
      this.#lifetime.add('update job follower', () => follower.dispose());
      follower.start();
    }

    const { installDir, updater, launch } = this.#options;
    const configured = this.#config.update.trust_file;
    const trustedRootFile = configured ?? this.#options.trustedRootFile ?? null;
    if (configured) this.log.warn(`update trust comes from config update.trust_file (${configured}): for tests and the demo only`);
    if (!installDir || !trustedRootFile) {
      this.log.info(`updates are off: ${!installDir ? 'no installation folder' : 'no trusted root built in and none configured'}`);
      return;
    }
    const updates = new UpdateService({
      state: this.state,
      log: this.log.child('update'),
      updatesDir: this.paths.updates,
      settings: this.#config.update,
      backend: this.#config.backend,
      trustedRootFile,
      running: this.#options.version,
      installDir,
      agentId: this.#agentId,
      http: axios.create({ headers: { 'User-Agent': `Outpost/${this.#options.version}` } }),
      report: (code, message, context) => this.report(code, message, context),
      flushReports: () => reporter?.flush() ?? Promise.resolve(),
      now: this.#options.now,
      random: this.#options.random ?? Math.random,
      ...testHold(this.#options.env),
      ...(updater &&
        launch && {
          handOff: async (version: string, stagedDir: string) => {
            const log = this.log.child('handoff');
            const confirmMs = 10_000;
            await handOff({ updater, launch, storage: this.paths.root, updatesDir: this.paths.updates, installDir, stagedDir, oldVersion: this.#options.version, newVersion: version, log, confirmMs, healthTimeoutMs: this.#config.update.health_timeout_s * 1000 });
            // Not awaited: shutdown waits for this very update run to end.
            void this.stop(`handed over to the updater for ${version}`);
          },
        }),
    });
    this.#updates = updates;
    this.#lifetime.add('updates', async () => {
      updates.dispose();
      await updates.idle();
    });
    updates.start();
  }

  readonly #handleCommand: CommandHandler = (command: IpcCommand, { clientPid }) => {
    const state = this.state.state;
    switch (command) {
      case 'status':
        return { reply: { status: 'ok', data: this.status() } };
      case 'force_restart':
        if (isUpdatingState(state)) {
          this.log.info(`force restart requested by pid ${clientPid} refused: busy in ${state}`);
          return { reply: { status: 'busy_updating', message: `the agent is updating (${state}); try again when it is done` } };
        }
        return {
          reply: { status: 'ok', message: 'shutting down', data: this.status() },
          // After the reply is out: the requester waits for our lock, which the shutdown releases.
          after: () => {
            const reason = `force restart requested by pid ${clientPid}`;
            if (this.state.state !== 'SHUTTING_DOWN' && this.state.state !== 'FORCE_RESTARTING') this.state.setState('FORCE_RESTARTING', reason);
            void this.stop(reason);
          },
        };
      case 'check_for_update': {
        const updates = this.#updates;
        if (!updates) return { reply: { status: 'not_available', message: 'updates are off on this agent (see its log)' } };
        return { reply: { status: 'ok', message: 'check started', data: this.status() }, after: () => updates.trigger('request') };
      }
      case 'show_diagnostics':
        return { reply: { status: 'not_available', message: `${command} is not yet available in this version of Outpost` } };
    }
  };

  /** The `outpost status` object (CONTRACT.md). */
  status(): StatusData {
    const updates = this.#updates?.status();
    return {
      state: this.state.state,
      version: this.#options.version,
      pid: process.pid,
      storage: this.paths.root,
      uptime_s: Math.round((this.#options.now().getTime() - this.startedAt.getTime()) / 1000),
      last_update_check: updates?.lastCheck ?? null,
      update: updates?.update ?? { offered: null, staged: null, last_error: null },
    };
  }

  /** Only the lock holder writes config, so this comes after the lock. */
  #recordVersion(): void {
    const previous = this.#config.current_version;
    const version = this.#options.version;
    if (previous === version) {
      this.log.info(`current_version ${version}`);
      return;
    }
    this.#config = { ...this.#config, current_version: version };
    writeConfig(this.paths.config, this.#config);
    this.log.info(previous === null ? `current_version recorded: ${version}` : `current_version ${previous} -> ${version}`);
  }
}

/** The agent's stable id (error reports, staged rollout): made once, kept in the storage folder. */
function readOrCreateAgentId(file: string): string {
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f-]{36}$/.test(id)) return id;
  } catch {
    // first start
  }
  const id = randomUUID();
  writeFileAtomic(file, `${id}\n`);
  return id;
}

/** OUTPOST_TEST_HOLD_STATE=<UPDATING_STATE>:<ms> (tests only; see UpdateServiceOptions.testHold). */
function testHold(env: NodeJS.ProcessEnv): { testHold?: { state: AgentState; ms: number } } {
  const match = /^(UPDATING_[A-Z]+):(\d+)$/.exec(env.OUTPOST_TEST_HOLD_STATE ?? '');
  return match ? { testHold: { state: match[1] as AgentState, ms: Number(match[2]) } } : {};
}
