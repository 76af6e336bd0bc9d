import { spawn } from 'node:child_process';
import { ErrorCode, isOutpostError } from '../base/errors.js';
import { createStderrLogger, type Logger } from '../base/logger.js';
import { ExitCode } from '../common/exit-codes.js';
import { AgentClient } from './core/agent-client.js';
import { AgentOverIpc } from './core/diagnostics/agent-over-ipc.js';
import { DiagnosticsWebServer } from './core/diagnostics/web-server.js';
import type { Platform } from './platform/index.js';

/** As `outpost status` waits: a live agent answers at once. */
const AGENT_PROBE_TIMEOUT_MS = 5_000;

export interface DiagnosticsCommandOptions {
  readonly platform: Platform;
  readonly env: NodeJS.ProcessEnv;
  readonly pageDir: string;
  /** Open the page in the default browser. */
  readonly open: boolean;
  /** Resolves when the command should stop (Ctrl+C, SIGTERM). */
  readonly stopped: Promise<unknown>;
}

/**
 * `outpost diagnostics`: serves the diagnostics page for the running agent on loopback and prints its
 * one-time URL. The page reaches the agent only through this process and the agent's authenticated
 * IPC: the agent itself opens no listener for it. Exit 1 when no agent runs; 0 after Ctrl+C.
 */
export async function serveDiagnostics(options: DiagnosticsCommandOptions): Promise<number> {
  const client = new AgentClient(options.platform, options.env);
  try {
    // Only whether it answers: the page reads the view (and its log tail) itself.
    await client.send('status', AGENT_PROBE_TIMEOUT_MS);
  } catch (error) {
    if (!isOutpostError(error, ErrorCode.IPC_NOT_RUNNING) && !isOutpostError(error, ErrorCode.IPC_TIMEOUT)) throw error;
    process.stderr.write(`outpost: no agent is running for ${client.address.storageRoot}\n`);
    return ExitCode.NOT_RUNNING;
  }
  const api = new AgentOverIpc(client);
  const log = createStderrLogger('warn');
  const server = await DiagnosticsWebServer.start({ api, pageDir: options.pageDir, log: log.child('diagnostics') });
  try {
    process.stdout.write(`${server.url}\n`);
    process.stderr.write('outpost: the link works once, from this machine only; Ctrl+C stops serving the page\n');
    if (options.open) openInBrowser(options.platform, server.url, log);
    await options.stopped;
    return ExitCode.OK;
  } finally {
    await server.close();
  }
}

/** Best effort: without a desktop (no xdg-open) the URL printed above still works. */
function openInBrowser(platform: Platform, url: string, log: Logger): void {
  const { command, args } = platform.openUrlCommand(url);
  const child = spawn(command, [...args], { detached: true, stdio: 'ignore' });
  child.on('error', (error) => log.warn(`could not open a browser (${command}: ${error.message}); open the URL above yourself`));
  child.unref();
}
