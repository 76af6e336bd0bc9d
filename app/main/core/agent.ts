import { DEVELOPMENT_BUILD, TestSwitch, testSwitch } from '../../base/build-flavor.js';
import { describeError, ErrorCode, isOutpostError, OutpostError } from '../../base/errors.js';
import { createFileLogger, isLogLevel, LOG_LEVELS, type LogLevel, type RootLogger } from '../../base/logger.js';
import type { StoragePaths } from '../../base/storage-layout.js';
import { readJob, writeHealthRecord } from '../../base/update-records.js';
import { AGENT_STATES, type AgentState, isUpdatingState } from '../../common/agent-state.js';
import type { ReportCode } from '../../common/codes.js';
import { ExitCode } from '../../common/exit-codes.js';
import type { DiagnosticsApi } from '../../common/diagnostics.js';
import type { StatusData } from '../../common/ipc.js';
import type { Platform } from '../platform/index.js';
import { readOrCreateAgentId } from './agent-id.js';
import { loadConfig, readConfig } from './config.js';
import type { Config } from './config-schema.js';
import type { ErrorReporter, ReportContext } from './error-reports.js';
import { InstanceLock } from './instance-lock.js';
import { AgentDiagnostics } from './diagnostics/agent-diagnostics.js';
import { commandHandler } from './ipc-commands.js';
import { loadOrCreateIpcSecret } from './ipc-secret.js';
import { IpcServer } from './ipc-server.js';
import { Lifetime } from './lifetime.js';
import { StateMachine } from './state-machine.js';
import { statusOf } from './status.js';
import { locateStorage, prepareStorage } from './storage.js';
import type { Command, UpdaterProgram } from './update/handoff.js';
import { provingOrRecover } from './update/unfinished-job.js';
import type { TestHold } from './update/update-pipeline.js';
import type { UpdateService } from './update/update-service.js';
import { recordVersion } from './version-record.js';

/** How long shutdown may spend sending the error reports still buffered (a dead backend must not hold it). */
const REPORTS_FLUSH_AT_SHUTDOWN_MS = 2_000;

/** What the shell around the agent adds: the desktop app has windows, the `outpost` command none. */
export interface ShellHooks {
  readonly kind: 'electron' | 'headless';
  /** Opens (or brings forward) the diagnostics window: a plain second launch of the desktop app asks for it. */
  readonly showDiagnostics?: () => void;
  /** Opens the log folder in the system's file manager. */
  readonly openFolder?: (dir: string) => Promise<void>;
}

export interface AgentOptions {
  readonly platform: Platform;
  /** The shell this agent runs in (the `outpost` command when not given). */
  readonly shell?: ShellHooks;
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
  /** What a first start writes as config.json (the installation's: DEFAULT_CONFIG with its organisation's backend). */
  readonly defaultConfig?: Config;
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
  /** The CAs trusted for the backend when the organisation adds its own (backend.ca_file); else Node's defaults. */
  #backendCas: string[] | undefined;
  /** Error reports and updates, loaded once the agent is IDLE: start-up does not wait for HTTP, TUF and WebSocket code. */
  #backend: Promise<void> = Promise.resolve();
  #reporter: ErrorReporter | undefined;
  #updates: UpdateService | undefined;
  #stopping: Promise<void> | undefined;
  #diagnostics: AgentDiagnostics | undefined;

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
      const preview = readConfig(paths.config, options.defaultConfig);
      log.setLevel(envLevel ?? preview.config.log_level);
      const agent = new Agent(options, elevated, paths, log, preview.config, lifetime);
      await agent.#takeLock();
      const proving = provingOrRecover(paths, platform, version, options.updater, log);
      agent.#config = recordVersion(paths.config, loadConfig(paths.config, log.child('config'), now, options.defaultConfig).config, version, log);
      agent.#agentId = readOrCreateAgentId(paths.agentId);
      const { ca_file } = agent.#config.backend;
      if (ca_file !== null) agent.#backendCas = (await import('./backend/tls-trust.js')).backendCertificates(ca_file);
      agent.#diagnostics = agent.#startDiagnostics();
      await agent.#listen();
      agent.state.setState('IDLE', 'start-up complete');
      if (proving) {
        writeHealthRecord(proving, version, now());
        log.info(`told the updater that ${version} is healthy (job ${proving.job_id})`);
      }
      agent.#backend = agent.#startBackend().catch((error: unknown) => {
        log.error(`error reports and updates could not start: ${describeError(error)}`);
      });
      return agent;
    } catch (error) {
      // An expected refusal was said where it happened; anything else is a bug, and its stack belongs in the log.
      if (!isOutpostError(error)) log.error('start-up failed on an internal error', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
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

  /** The diagnostics page's source, in-process for the desktop app and over the IPC for `outpost diagnostics`. */
  diagnostics(): DiagnosticsApi {
    if (!this.#diagnostics) throw new Error('the agent has not started');
    return this.#diagnostics;
  }

  #startDiagnostics(): AgentDiagnostics {
    const diagnostics = new AgentDiagnostics({
      shell: this.#options.shell ?? { kind: 'headless' },
      state: this.state,
      version: this.#options.version,
      startedAt: this.startedAt,
      paths: this.paths,
      channel: this.#config.update.channel,
      now: this.#options.now,
      updates: () => this.#updates,
      reportsQueued: () => this.#reporter?.pending ?? 0,
      config: () => this.#config,
    });
    this.#lifetime.add('diagnostics', () => diagnostics.dispose());
    return diagnostics;
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
      handle: commandHandler({
        state: this.state,
        log: this.log,
        status: () => this.status(),
        stop: (reason) => void this.stop(reason),
        updates: () => this.#updates,
        diagnostics: this.diagnostics(),
        showDiagnostics: this.#options.shell?.showDiagnostics,
      }),
    });
    this.#lifetime.add('IPC server', () => server.close());
  }

  /** The one way the agent reports an error to the backend (buffered on disk while it is unreachable). */
  report(code: ReportCode, message: string, context?: ReportContext): Promise<void> {
    return this.#reporter?.report(code, message, context) ?? Promise.resolve();
  }

  /**
   * The update pipeline (axios, tuf-js, ws) is loaded only when updates are on, and axios by the
   * report sender only for its first report: a module once loaded stays in memory for good, and these
   * would cost an idle agent without updates about 12 MB (bench/agent-idle.ts).
   */
  async #startBackend(): Promise<void> {
    const [{ ErrorReporter }, { HttpReportSender }, { JobFollower }, { AgentCredentials, keptCredentials }, { BackendHttp }] = await Promise.all([
      import('./error-reports.js'),
      import('./report-sender.js'),
      import('./update/job-follower.js'),
      import('./backend/agent-credentials.js'),
      import('./backend/backend-http.js'),
    ]);
    if (this.#stopping) return;
    const backendHttp = { baseUrl: this.#config.backend.url, timeoutMs: 10_000, userAgent: `Outpost/${this.#options.version}`, ...(this.#backendCas && { ca: this.#backendCas }) };
    // One identity for reports and the push channel: a token refused by either is enrolled again once.
    const credentials = new AgentCredentials({
      agentId: this.#agentId,
      ...keptCredentials(this.#options.platform, this.paths, this.#elevated),
      http: new BackendHttp(backendHttp),
      log: this.log.child('enrollment'),
      now: this.#options.now,
    });
    this.#reporter = new ErrorReporter({
      file: this.paths.errorReports,
      identity: () => ({ agent_id: this.#agentId, agent_version: this.#options.version, state: this.state.state }),
      send: new HttpReportSender({ ...backendHttp, credentials }),
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
        job: lastJob,
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
    const trustedRootFile = this.#trustedRoot();
    if (!installDir || !trustedRootFile) {
      this.log.info(`updates are off: ${!installDir ? 'no installation folder' : 'no trusted root built in and none configured'}`);
      return;
    }
    const [{ UpdateService }, { handOff }, { default: axios }, https] = await Promise.all([import('./update/update-service.js'), import('./update/handoff.js'), import('axios'), import('node:https')]);
    if (this.#stopping) return;
    const updates = new UpdateService({
      state: this.state,
      log: this.log.child('update'),
      updates: this.paths.updates,
      settings: this.#config.update,
      backend: this.#config.backend,
      trustedRootFile,
      running: this.#options.version,
      installDir,
      agentId: this.#agentId,
      http: axios.create({ headers: { 'User-Agent': `Outpost/${this.#options.version}` }, ...(this.#backendCas && { httpsAgent: new https.Agent({ ca: this.#backendCas, keepAlive: true }) }) }),
      ...(this.#backendCas && { ca: this.#backendCas }),
      credentials,
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
            await handOff({ updater, launch, storage: this.paths.root, updates: this.paths.updates, installDir, stagedDir, oldVersion: this.#options.version, newVersion: version, log, confirmMs, healthTimeoutMs: this.#config.update.health_timeout_s * 1000 });
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

  /**
   * The TUF root to trust: the installation's. Config update.trust_file replaces it in a development
   * build only (tests and the demo); a release ignores it, and says so, since it would replace the
   * anchor of every update.
   */
  #trustedRoot(): string | null {
    const configured = this.#config.update.trust_file;
    if (configured && DEVELOPMENT_BUILD) {
      this.log.warn(`update trust comes from config update.trust_file (${configured}): a development build, for tests and the demo only`);
      return configured;
    }
    if (configured) this.log.warn(`config update.trust_file (${configured}) is ignored: a release trusts only the root built into its installation`);
    return this.#options.trustedRootFile ?? null;
  }

  /** The `outpost status` object (CONTRACT.md). */
  status(): StatusData {
    return statusOf({
      state: this.state.state,
      version: this.#options.version,
      storage: this.paths.root,
      startedAt: this.startedAt,
      now: this.#options.now(),
      updates: this.#updates?.status(),
    });
  }
}

/** TestSwitch HOLD_STATE=<UPDATING_STATE>:<release file> (development builds; see UpdateServiceOptions.testHold). */
function testHold(env: NodeJS.ProcessEnv): { testHold?: TestHold } {
  const value = testSwitch(env, TestSwitch.HOLD_STATE) ?? '';
  const colon = value.indexOf(':');
  const state = AGENT_STATES.find((name) => isUpdatingState(name) && name === value.slice(0, colon));
  return state && colon > 0 ? { testHold: { state, release: value.slice(colon + 1) } } : {};
}
