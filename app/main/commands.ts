import { describeError, ErrorCode, isOutpostError, OutpostError } from '../base/errors.js';
import { waitUntilGone } from '../base/process-liveness.js';
import { storagePaths } from '../base/storage-layout.js';
import { APP_VERSION } from '../base/version.js';
import { runningLine } from '../common/cli-output.js';
import { ExitCode } from '../common/exit-codes.js';
import type { Reply } from '../common/ipc.js';
import { type Command, USAGE } from './cli.js';
import type { Agent, AgentStopped } from './core/agent.js';
import { autostartStatus, setAutostart } from './autostart-command.js';
import { setEnrollmentSecret } from './enrollment-command.js';
import { AgentClient, unexpectedReply } from './core/agent-client.js';
import type { Command as LaunchCommand } from './core/update/handoff.js';
import { updateBeingApplied } from './core/update/unfinished-job.js';
import { locateInstallation } from './installation.js';
import { createPlatform, type Platform } from './platform/index.js';

/**
 * What the `outpost` command and the desktop app do alike (CONTRACT.md: the Electron app accepts
 * the same flags, with the same exit codes): the commands that start no agent, the `--force`
 * request, how a running agent is tied to its process, and how a failure becomes a line on stderr
 * and an exit code.
 */

/** `status` answers at once; anything slower is an agent that is stuck. */
const STATUS_TIMEOUT_MS = 5_000;
/** The request only: the agent replies before it starts shutting down. */
const FORCE_REQUEST_TIMEOUT_MS = 10_000;
/** How long the agent's graceful shutdown may take before `--force` gives up (exit 5). */
const FORCE_LOCK_WAIT_MS = 30_000;

/** Starts the agent in this process; `waitForLockMs` is how long to wait for an old agent's lock. */
export type RunAgent = (waitForLockMs: number) => Promise<number>;

/** The commands that never start an agent. Returns the exit code. */
export async function answer(command: Exclude<Command, { kind: 'run' }>, env: NodeJS.ProcessEnv, login: LaunchCommand): Promise<number> {
  switch (command.kind) {
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return ExitCode.OK;
    case 'version':
      process.stdout.write(`${APP_VERSION}\n`);
      return ExitCode.OK;
    case 'status':
      return await printStatus(env);
    case 'diagnostics':
      return await runDiagnostics(env, command.open);
    case 'quit':
      return await quit(env);
    case 'set-enrollment-secret':
      process.stdout.write(`${setEnrollmentSecret(createPlatform(process.platform, env), env, command.file)}\n`);
      return ExitCode.OK;
    case 'autostart':
      process.stdout.write(`${setAutostart(createPlatform(process.platform, env), command.enable, login, command.scope)}\n`);
      return ExitCode.OK;
  }
}

/** `outpost status`: the running agent's status object on stdout, one line of JSON. */
async function printStatus(env: NodeJS.ProcessEnv): Promise<number> {
  const platform = createPlatform(process.platform, env);
  const client = new AgentClient(platform, env);
  try {
    const reply = await client.send('status', STATUS_TIMEOUT_MS);
    if (reply.status !== 'ok' || !reply.data) throw unexpectedReply('status', reply);
    // Start at login is this machine's (or user's) setting, not the agent's state: read here, beside it.
    process.stdout.write(`${JSON.stringify({ ...reply.data, autostart: autostartStatus(platform) })}\n`);
    return ExitCode.OK;
  } catch (error) {
    if (!isOutpostError(error, ErrorCode.IPC_NOT_RUNNING)) throw error;
    process.stderr.write(`outpost: no agent is running for ${client.address.storageRoot}\n`);
    return ExitCode.NOT_RUNNING;
  }
}

/**
 * `outpost --quit`: asks the running agent to shut down gracefully and waits (bounded) until its
 * process is gone, so that an installer may replace its files next. Refused while it updates (exit 3),
 * like `--force`. No agent running is success: there is nothing to stop.
 */
async function quit(env: NodeJS.ProcessEnv): Promise<number> {
  const platform = createPlatform(process.platform, env);
  const client = new AgentClient(platform, env);
  const reply = await askToStop(client, platform, 'quit', 'quit');
  if (reply === null) {
    process.stderr.write(`outpost: no agent was running for ${client.address.storageRoot}; nothing to stop\n`);
    return ExitCode.OK;
  }
  if (!reply.data) throw unexpectedReply('quit', reply);
  const { pid } = reply.data;
  await waitUntilGone(pid, (candidate) => platform.isProcessAlive(candidate), FORCE_LOCK_WAIT_MS);
  if (platform.isProcessAlive(pid)) {
    throw new OutpostError(ErrorCode.QUIT_TIMEOUT, `pid ${pid} agreed to shut down but still runs after ${FORCE_LOCK_WAIT_MS / 1000} s; leaving it alone.`);
  }
  process.stderr.write(`outpost: pid ${pid} has shut down\n`);
  return ExitCode.OK;
}

/** `outpost diagnostics`: serves the page until Ctrl+C or SIGTERM (diagnostics-command.ts). */
async function runDiagnostics(env: NodeJS.ProcessEnv, open: boolean): Promise<number> {
  const { serveDiagnostics } = await import('./diagnostics-command.js');
  const stopped = new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  return serveDiagnostics({ platform: createPlatform(process.platform, env), env, pageDir: locateInstallation(env).pageDir, open, stopped });
}

/**
 * `outpost --force`: ask the running agent to shut down, wait (bounded) for its lock, then run in
 * its place. Refused while it updates: an update must never be cut in half from outside.
 */
export async function forceRestart(env: NodeJS.ProcessEnv, run: RunAgent): Promise<number> {
  const platform = createPlatform(process.platform, env);
  const reply = await askToStop(new AgentClient(platform, env), platform, 'force_restart', 'restart');
  if (reply === null) {
    process.stderr.write('outpost: no agent was running; starting\n');
    return run(0);
  }
  const holder = reply.data ? `pid ${reply.data.pid}` : 'the running agent';
  process.stderr.write(`outpost: ${holder} is shutting down; waiting up to ${FORCE_LOCK_WAIT_MS / 1000} s for its lock\n`);
  try {
    return await run(FORCE_LOCK_WAIT_MS);
  } catch (error) {
    if (!isOutpostError(error, ErrorCode.LOCK_HELD)) throw error;
    throw new OutpostError(ErrorCode.FORCE_TIMEOUT, `${holder} agreed to shut down but still holds the lock after ${FORCE_LOCK_WAIT_MS / 1000} s; leaving it alone.`, {
      cause: error,
    });
  }
}

/**
 * Asks the running agent to shut down (`--force`, `--quit`): its `ok` reply, or null when none runs.
 * Refused while it updates (ERR_BUSY_UPDATING, exit 3): an update must never be cut in half from
 * outside, also in the moment between the old agent's exit and the new one's start, when only the
 * updater runs.
 */
async function askToStop(client: AgentClient, platform: Platform, command: 'force_restart' | 'quit', verb: string): Promise<Reply | null> {
  let reply: Reply;
  try {
    reply = await client.send(command, FORCE_REQUEST_TIMEOUT_MS);
  } catch (error) {
    if (!isOutpostError(error, ErrorCode.IPC_NOT_RUNNING)) throw error;
    const job = updateBeingApplied(storagePaths(client.address.storageRoot), platform);
    if (job === null) return null;
    throw new OutpostError(ErrorCode.BUSY_UPDATING, `Cannot ${verb} now: the updater is applying the update ${job.old_version} -> ${job.new_version}; try again when it is done.`);
  }
  if (reply.status === 'busy_updating') throw new OutpostError(ErrorCode.BUSY_UPDATING, `The running agent refused to ${verb}: ${reply.message ?? 'it is updating'}.`);
  if (reply.status !== 'ok') throw unexpectedReply(command, reply);
  return reply;
}

/**
 * Ties this process to a started agent until it stops: signals and fatal errors go to its one
 * graceful shutdown, and the lock is released on any exit. Prints the running line (cli-output.ts)
 * and, at the end, why it stopped.
 */
export async function superviseAgent(agent: Agent, version: string): Promise<AgentStopped> {
  const onSignal = (signal: NodeJS.Signals) => void agent.stop(`received ${signal}`);
  const onFatal = (error: unknown) => {
    agent.log.error('uncaught error; shutting down', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    void agent.stop(`uncaught error: ${describeError(error)}`, ExitCode.SOFTWARE);
  };
  // The last resort for paths that skip the graceful shutdown (process.exit elsewhere).
  const onExit = () => agent.releaseLockNow();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  process.on('exit', onExit);

  process.stderr.write(`outpost: ${runningLine(version, process.pid, agent.paths.root)}\n`);
  const stopped = await agent.stopped;
  process.stderr.write(`outpost: stopped (${stopped.reason})\n`);

  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('exit', onExit);
  return stopped;
}

/** A failure as one line on stderr (and the usage, for a usage error); returns its exit code. */
export function fail(error: unknown, env: NodeJS.ProcessEnv): number {
  if (isOutpostError(error)) {
    process.stderr.write(`outpost: ${error.message}\n`);
    if (error.code === ErrorCode.USAGE) process.stderr.write(`\n${USAGE}\n`);
    return error.exitCode;
  }
  // One line for whoever ran the command; the stack is in the agent's log (see Agent.start), and on
  // stderr too when asked for (OUTPOST_LOG_LEVEL=debug).
  const stack = env.OUTPOST_LOG_LEVEL === 'debug' && error instanceof Error && error.stack ? `\n${error.stack}` : '';
  process.stderr.write(`outpost: internal error: ${describeError(error)}${stack}\n`);
  return ExitCode.SOFTWARE;
}
