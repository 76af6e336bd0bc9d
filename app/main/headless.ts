import { isSea } from 'node:sea';
import { parseCommand } from './cli.js';
import { agentOptions, type Host, selfLaunch } from './agent-start.js';
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
  const host = processHost(env);
  try {
    const command = parseCommand(argv);
    if (command.kind !== 'run') return await answer(command, env, selfLaunch(host));
    return command.force ? await forceRestart(env, (waitForLockMs) => runForeground(host, waitForLockMs)) : await runForeground(host);
  } catch (error) {
    return fail(error, env);
  }
}

/**
 * This very program, as it was started: how the updater and the login item start it again. `node
 * <script>` from a checkout or an npm install; a single executable (the stand-in Electron that the
 * installer tests run, tools/stand-in-electron/) is the program itself, though Node repeats its path
 * as argv[1].
 */
function processHost(env: NodeJS.ProcessEnv): Host {
  const { execPath, argv } = process;
  if (isSea()) return { execPath, argv: [execPath, ...argv.slice(2)], env, script: null };
  return { execPath, argv, env, script: argv[1] ?? null };
}

async function runForeground(host: Host, waitForLockMs = 0): Promise<number> {
  const { env } = host;
  // Loaded here, not at the top: `status` and `--version` need none of the agent (logging, config
  // schemas), and start faster without it.
  const { Agent } = await import('./core/agent.js');
  const installation = locateInstallation(env);
  const agent = await Agent.start(
    agentOptions(installation, { host, platform: createPlatform(process.platform, env), shell: { kind: 'headless' }, waitForLockMs, stderrLogLevel: 'warn' }),
  );

  const stopped = await superviseAgent(agent, installation.version);
  // If a handle survived shutdown, exit anyway rather than linger without the lock.
  setTimeout(() => process.exit(stopped.exitCode), SHUTDOWN_GRACE_MS).unref();
  return stopped.exitCode;
}
