import { parseCommand } from './cli.js';
import { agentOptions } from './agent-start.js';
import { answer, fail, forceRestart, superviseAgent } from './commands.js';
import { locateInstallation } from './installation.js';
import { createPlatform } from './platform/index.js';

/** How long shutdown may take before the process exits anyway (a stuck handle must not hang it). */
const SHUTDOWN_GRACE_MS = 10_000;

/**
 * The `outpost` command: the same core as the Electron app, without Electron. Returns the exit code;
 * the caller exits with it.
 */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const command = parseCommand(argv);
    if (command.kind !== 'run') return await answer(command, env);
    return command.force ? await forceRestart(env, (waitForLockMs) => runForeground(env, waitForLockMs)) : await runForeground(env);
  } catch (error) {
    return fail(error, env);
  }
}

async function runForeground(env: NodeJS.ProcessEnv, waitForLockMs = 0): Promise<number> {
  // Loaded here, not at the top: `status` and `--version` need none of the agent (logging, config
  // schemas), and start faster without it.
  const { Agent } = await import('./core/agent.js');
  const installation = locateInstallation(env);
  const host = { execPath: process.execPath, argv: process.argv, env, defaultApp: false };
  const agent = await Agent.start(
    agentOptions(installation, { host, platform: createPlatform(process.platform, env), shell: { kind: 'headless' }, waitForLockMs, stderrLogLevel: 'warn' }),
  );

  const stopped = await superviseAgent(agent, installation.version);
  // If a handle survived shutdown, exit anyway rather than linger without the lock.
  setTimeout(() => process.exit(stopped.exitCode), SHUTDOWN_GRACE_MS).unref();
  return stopped.exitCode;
}
