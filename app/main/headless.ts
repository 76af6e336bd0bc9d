import { runningLine } from '../common/cli-output.js';
import { ExitCode } from '../common/exit-codes.js';
import { parseCommand, USAGE } from './cli.js';
import { Agent } from './core/agent.js';
import { describeError, ErrorCode, isOutpostError, OutpostError } from './core/errors.js';
import { createPlatform } from './platform/index.js';
import { APP_VERSION } from './version.js';

/** How long shutdown may take before the process exits anyway (a stuck handle must not hang it). */
const SHUTDOWN_GRACE_MS = 10_000;

/**
 * The `outpost` command: the same core as the Electron app, without Electron. Returns the exit code;
 * the caller exits with it.
 */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const command = parseCommand(argv);
    switch (command.kind) {
      case 'help':
        process.stdout.write(`${USAGE}\n`);
        return ExitCode.OK;
      case 'version':
        process.stdout.write(`${APP_VERSION}\n`);
        return ExitCode.OK;
      case 'status':
        throw notYet('outpost status');
      case 'autostart':
        throw notYet(command.enable ? 'outpost --enable-autostart' : 'outpost --disable-autostart');
      case 'run':
        if (command.force) throw notYet('outpost --force');
        return await runForeground(env);
    }
  } catch (error) {
    return fail(error);
  }
}

async function runForeground(env: NodeJS.ProcessEnv): Promise<number> {
  const agent = await Agent.start({
    platform: createPlatform(process.platform, env),
    env,
    version: APP_VERSION,
    now: () => new Date(),
    stderrLogLevel: 'warn',
  });

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

  process.stderr.write(`outpost: ${runningLine(APP_VERSION, process.pid, agent.paths.root)}\n`);
  const stopped = await agent.stopped;
  process.stderr.write(`outpost: stopped (${stopped.reason})\n`);

  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('exit', onExit);
  // If a handle survived shutdown, exit anyway rather than linger without the lock.
  setTimeout(() => process.exit(stopped.exitCode), SHUTDOWN_GRACE_MS).unref();
  return stopped.exitCode;
}

function notYet(what: string): OutpostError {
  return new OutpostError(ErrorCode.NOT_AVAILABLE, `${what} is not yet available in this version of Outpost.`);
}

function fail(error: unknown): number {
  if (isOutpostError(error)) {
    process.stderr.write(`outpost: ${error.message}\n`);
    if (error.code === ErrorCode.USAGE) process.stderr.write(`\n${USAGE}\n`);
    return error.exitCode;
  }
  process.stderr.write(`outpost: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return ExitCode.SOFTWARE;
}
