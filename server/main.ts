import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FeedServer } from './server.js';

/** Exit codes of `outpost-server` (BSD sysexits.h, like the `outpost` command). */
export const ServerExit = {
  OK: 0,
  USAGE: 64,
  NO_INPUT: 66,
  UNAVAILABLE: 69,
  CANT_CREATE: 73,
} as const;

/** The agent's default backend is http://127.0.0.1:8470 (DEFAULT_CONFIG): a bare `outpost-server` matches it. */
export const DEFAULT_PORT = 8470;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_REPORTS = 'reports.jsonl';

export const USAGE = `Usage: outpost-server --feed DIR [--port N] [--host HOST] [--reports FILE]

The reference Outpost backend: serves the signed update feed, pushes "update required" to the
connected agents when a new feed version is published, and stores the agents' error reports.

  --feed DIR       the feed folder (the TUF repository outpost-release writes); created empty if missing
  --port N         TCP port, 0 for any free one (default ${DEFAULT_PORT}, the agent's default backend)
  --host HOST      address to listen on (default ${DEFAULT_HOST}: this machine only; 0.0.0.0 for every interface)
  --reports FILE   append-only JSON Lines file for error reports (default ./${DEFAULT_REPORTS}, in the current
                   folder); it must not be inside the feed folder, which anyone can download
  -h, --help       print this text

Endpoints: GET /feed/<path> (Range supported), /ws (WebSocket push), POST /reports, GET /health.
Once listening it prints one line: outpost-server listening on http://HOST:PORT (feed DIR)
Stops cleanly on SIGINT or SIGTERM (exit 0).
Exit codes: 64 bad arguments; 66 the feed path is not a folder; 69 cannot start (port in use,
reports file unwritable...); 73 cannot create the feed folder.
`;

type Parsed = { help: true } | { help: false; feedDir: string; port: number; host: string; reportsFile: string };

/** `outpost-server ARGS`: runs until SIGINT/SIGTERM; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parse(argv);
  if (typeof parsed === 'string') {
    process.stderr.write(`outpost-server: ${parsed}\n\n${USAGE}`);
    return ServerExit.USAGE;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return ServerExit.OK;
  }
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

  const feed = ensureFeedFolder(parsed.feedDir, log);
  if (feed !== 'ok') return feed;

  // Registered before the (async) start, so that a signal during start-up also stops cleanly.
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = resolve;
  });
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let server: FeedServer;
    try {
      server = await FeedServer.start({ feedDir: parsed.feedDir, host: parsed.host, port: parsed.port, reportsFile: parsed.reportsFile, log });
    } catch (error) {
      process.stderr.write(`outpost-server: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
      return ServerExit.UNAVAILABLE;
    }
    process.stdout.write(`outpost-server listening on ${server.url} (feed ${parsed.feedDir})\n`);
    log(`reports go to ${parsed.reportsFile}; stop with Ctrl+C`);
    const signal = await signalled;
    log(`${signal}: stopping`);
    await server.close();
    return ServerExit.OK;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function parse(argv: string[]): Parsed | string {
  let values: { feed?: string | undefined; port?: string | undefined; host?: string | undefined; reports?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { feed: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, reports: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if (values.help) return { help: true };
  if (!values.feed) return '--feed DIR is required';
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (values.port !== undefined && !/^\d+$/.test(values.port)) return `--port must be a number from 0 to 65535 (got "${values.port}")`;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) return `--port must be a number from 0 to 65535 (got "${values.port}")`;
  const host = values.host ?? DEFAULT_HOST;
  if (host === '') return '--host must not be empty';
  const feedDir = path.resolve(values.feed);
  const reportsFile = path.resolve(values.reports ?? DEFAULT_REPORTS);
  if (isInside(feedDir, reportsFile)) {
    return `the reports file ${reportsFile} is inside the feed folder ${feedDir}, which is served to anyone: choose another --reports`;
  }
  return { help: false, feedDir, port, host, reportsFile };
}

/** Whether `file` is `folder` or inside it (by path, and by real path where the folder exists). */
function isInside(folder: string, file: string): boolean {
  const inside = (dir: string, target: string) => {
    const relative = path.relative(dir, target);
    return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
  };
  if (inside(folder, file)) return true;
  try {
    const realFolder = fs.realpathSync(folder);
    const realParent = fs.realpathSync(path.dirname(file));
    return inside(realFolder, path.join(realParent, path.basename(file)));
  } catch {
    return false;
  }
}

/** A missing feed folder is created (a new feed starts empty); a file in its place is an error. */
function ensureFeedFolder(feedDir: string, log: (line: string) => void): 'ok' | number {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(feedDir);
  } catch {
    stat = undefined;
  }
  if (stat && !stat.isDirectory()) {
    process.stderr.write(`outpost-server: the feed path ${feedDir} is not a folder\n`);
    return ServerExit.NO_INPUT;
  }
  if (stat) return 'ok';
  try {
    fs.mkdirSync(feedDir, { recursive: true });
  } catch (error) {
    process.stderr.write(`outpost-server: cannot create the feed folder ${feedDir}: ${error instanceof Error ? error.message : String(error)}\n`);
    return ServerExit.CANT_CREATE;
  }
  log(`the feed folder ${feedDir} did not exist: created it (an empty feed: nothing to serve until a release is published)`);
  return 'ok';
}
