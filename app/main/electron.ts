/**
 * Entry of the Electron app: builds the same core as the `outpost` command and ties its life to
 * Electron's. The tray, the hidden session window and the diagnostics window come with their own
 * issue; this file stays thin, and its logic lives in core/ where it is tested under plain Node.
 */
import { app } from 'electron';
import { ExitCode } from '../common/exit-codes.js';
import { Agent } from './core/agent.js';
import { isOutpostError } from '../base/errors.js';
import { createPlatform } from './platform/index.js';
import { APP_VERSION } from '../base/version.js';

async function start(): Promise<void> {
  await app.whenReady();
  let agent: Agent;
  try {
    agent = await Agent.start({ platform: createPlatform(), env: process.env, version: APP_VERSION, now: () => new Date(), stderrLogLevel: false });
  } catch (error) {
    process.stderr.write(`outpost: ${error instanceof Error ? error.message : String(error)}\n`);
    app.exit(isOutpostError(error) ? error.exitCode : ExitCode.SOFTWARE);
    return;
  }
  // A background agent has no window to close; it lives until it is told to stop.
  app.on('window-all-closed', () => undefined);
  app.on('before-quit', (event) => {
    if (agent.currentState === 'SHUTTING_DOWN') return;
    event.preventDefault();
    void agent.stop('Electron is quitting');
  });
  const stopped = await agent.stopped;
  app.exit(stopped.exitCode);
}

void start();
