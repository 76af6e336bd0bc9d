/**
 * Entry of the Electron app: the same command line, the same agent (agentOptions, from the same
 * installation record) and the same exit codes as the `outpost` command, wrapped in the desktop
 * shell (tray, hidden session window, diagnostics window). It starts with no visible window. Every
 * decision lives in a module tested under Node (shell/, commands.ts); this file only wires Electron.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app } from 'electron';
import { DEVELOPMENT_BUILD } from '../base/build-flavor.js';
import { describeError } from '../base/errors.js';
import { ExitCode } from '../common/exit-codes.js';
import { agentOptions, type Host, selfLaunch, userArguments } from './agent-start.js';
import { parseCommand } from './cli.js';
import { answer, fail, forceRestart, superviseAgent } from './commands.js';
import { AgentClient } from './core/agent-client.js';
import { locateInstallation } from './installation.js';
import { createPlatform } from './platform/index.js';
import { appFiles } from './shell/app-files.js';
import { DesktopShell } from './shell/desktop-shell.js';
import { registerDiagnosticsScheme } from './shell/diagnostics-session.js';
import { askToShowDiagnostics, secondLaunchOutcome } from './shell/second-launch.js';

/** dist/, which this file is compiled into as dist/app/main/electron.js. */
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Windows groups the app's tray icon and windows under this id; the installer's shortcuts carry the same (electron-builder appId). */
const APP_USER_MODEL_ID = 'dev.outpost.agent';

async function main(host: Host): Promise<number> {
  const { env } = host;
  try {
    const command = parseCommand(userArguments(host));
    if (command.kind !== 'run') return await answer(command, env, selfLaunch(host));
    if (command.force) return await forceRestart(env, (waitForLockMs) => runDesktop(host, waitForLockMs));
    const outcome = secondLaunchOutcome(await askToShowDiagnostics(new AgentClient(createPlatform(process.platform, env), env)));
    if (outcome.kind === 'start') return await runDesktop(host, 0);
    process.stderr.write(`outpost: ${outcome.message}\n`);
    return outcome.code;
  } catch (error) {
    return fail(error, env);
  }
}

async function runDesktop(host: Host, waitForLockMs: number): Promise<number> {
  await app.whenReady();
  if (process.platform === 'win32') app.setAppUserModelId(APP_USER_MODEL_ID);
  app.dock?.hide();
  // A background agent has no window to close: it lives until it is told to stop.
  app.on('window-all-closed', () => undefined);

  const platform = createPlatform(process.platform, host.env);
  const installation = locateInstallation(host.env);
  const launch = selfLaunch(host);
  const desktop = new DesktopShell({
    platform: platform.name,
    files: appFiles(DIST),
    development: DEVELOPMENT_BUILD,
    relaunch: () => app.relaunch({ execPath: launch.command, args: [...launch.args] }),
    now: () => new Date(),
  });
  const { Agent } = await import('./core/agent.js');
  const agent = await Agent.start(agentOptions(installation, { host, platform, shell: desktop.hooks, waitForLockMs, stderrLogLevel: 'warn' }));
  try {
    desktop.attach(agent);
  } catch (error) {
    // The agent runs and holds the lock: it goes down its own shutdown, and the error is said on the way out.
    await agent.stop(`the desktop shell did not start: ${describeError(error)}`, ExitCode.SOFTWARE);
    throw error;
  }
  // Cmd+Q, the dock, an installer's quit: all through the one graceful shutdown, after which main() exits.
  const onQuit = (event: Electron.Event) => {
    event.preventDefault();
    void agent.stop('Electron is quitting');
  };
  app.on('before-quit', onQuit);

  const stopped = await superviseAgent(agent, installation.version);
  app.off('before-quit', onQuit);
  desktop.dispose();
  return stopped.exitCode;
}

// Electron takes privileged schemes only before it is ready.
registerDiagnosticsScheme();
// An unpackaged app runs as `electron <folder>` (process.defaultApp): the folder is its script.
const host: Host = { execPath: process.execPath, argv: process.argv, env: process.env, script: process.defaultApp === true ? (process.argv[1] ?? null) : null };
void main(host).then((code) => app.exit(code));
