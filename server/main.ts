import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ExitCode } from '../app/common/exit-codes.js';
import { isRedisUrl } from '../app/common/publish-events.js';
import { parseOrigin } from './origins.js';
import { DEFAULT_MAX_CONNECTIONS } from './push.js';
import { DEFAULT_MAX_REPORTS, DEFAULT_MAX_REPORTS_BYTES, DEFAULT_REPORTS_PER_MINUTE, MIN_REPORTS_MAX_BYTES } from './reports-intake.js';
import { FeedServer, type FeedServerOptions } from './server.js';


/** The agent's default backend is http://127.0.0.1:8470 (DEFAULT_CONFIG): a bare `outpost-server` matches it. */
export const DEFAULT_PORT = 8470;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_REPORTS = 'reports.jsonl';

export const USAGE = `Usage: outpost-server --feed DIR [--port N] [--host HOST] [--reports FILE] [LIMITS]

The reference Outpost backend: serves the signed update feed, pushes "update required" to the
connected agents when a new feed version is published, and stores the agents' error reports.

  --feed DIR       the feed folder (the TUF repository outpost-release writes); created empty if missing
  --port N         TCP port, 0 for any free one (default ${DEFAULT_PORT}, the agent's default backend)
  --host HOST      address to listen on (default ${DEFAULT_HOST}: this machine only; 0.0.0.0 for every interface)
  --reports FILE   the JSON Lines file error reports are appended to (default ./${DEFAULT_REPORTS}, in the current
                   folder); it must not be inside the feed folder, which anyone can download
  --redis URL      learn of publishes from Redis pub/sub (redis:// or rediss://), not by watching the feed
                   folder: for several nodes behind a balancer (outpost-release publish --redis announces)
  -h, --help       print this text

Limits (what a stranger can cost the server):
  --max-connections N      open WebSockets at /ws at most (default ${DEFAULT_MAX_CONNECTIONS}); past it an upgrade is
                           answered 503 "server full" and agents retry with their backoff
  --allow-origin URL       a web page origin (https://host[:port]) that may use /ws and POST /reports;
                           repeatable. A request with any other Origin header is refused with 403. Agents
                           send none. Default: none allowed, so no web page can use either
  --reports-max-count N    reports kept at most (default ${DEFAULT_MAX_REPORTS})
  --reports-max-bytes N    bytes of the reports file at most (default ${DEFAULT_MAX_REPORTS_BYTES}, at least ${MIN_REPORTS_MAX_BYTES}); past
                           either bound the oldest reports are dropped, a quarter of the bound at a time
                           (counted in GET /health's reports_dropped, and logged)
  --reports-per-minute N   reports taken per minute from one agent_id (default ${DEFAULT_REPORTS_PER_MINUTE}); more are answered
                           429 with Retry-After, which agents take as "send it later"

Endpoints: GET /feed/<path> (Range supported), /ws (WebSocket push), POST /reports, GET /health.
Once listening it prints one line: outpost-server listening on http://HOST:PORT (feed DIR)
Stops cleanly on SIGINT or SIGTERM (exit 0).
Exit codes: 64 bad arguments; 66 the feed path is not a folder; 69 cannot start (port in use,
reports file unwritable...); 73 cannot create the feed folder.
`;

type Limits = Pick<FeedServerOptions, 'maxConnections' | 'allowedOrigins' | 'maxReports' | 'maxReportsBytes' | 'reportsPerMinute'>;
type Parsed = { help: true } | { help: false; feedDir: string; port: number; host: string; reportsFile: string; redisUrl: string | undefined; limits: Limits };

/** `outpost-server ARGS`: runs until SIGINT/SIGTERM; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parse(argv);
  if (typeof parsed === 'string') {
    process.stderr.write(`outpost-server: ${parsed}\n\n${USAGE}`);
    return ExitCode.USAGE;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return ExitCode.OK;
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
      server = await FeedServer.start({ feedDir: parsed.feedDir, host: parsed.host, port: parsed.port, reportsFile: parsed.reportsFile, log, ...(parsed.redisUrl && { redisUrl: parsed.redisUrl }), ...parsed.limits });
    } catch (error) {
      process.stderr.write(`outpost-server: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
      return ExitCode.UNAVAILABLE;
    }
    process.stdout.write(`outpost-server listening on ${server.url} (feed ${parsed.feedDir})\n`);
    log(`reports go to ${parsed.reportsFile}; stop with Ctrl+C`);
    const signal = await signalled;
    log(`${signal}: stopping`);
    await server.close();
    return ExitCode.OK;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function parse(argv: string[]): Parsed | string {
  let values: ReturnType<typeof parseOptions>['values'];
  try {
    ({ values } = parseOptions(argv));
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
  const redisUrl = values.redis;
  if (redisUrl !== undefined && !isRedisUrl(redisUrl)) return `--redis must be a redis:// or rediss:// URL (got "${redisUrl}")`;
  const limits = parseLimits(values);
  if (typeof limits === 'string') return limits;
  return { help: false, feedDir, port, host, reportsFile, redisUrl, limits };
}

/** The flags of `outpost-server` (USAGE above says what each means). */
const OPTIONS = {
  feed: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  reports: { type: 'string' },
  redis: { type: 'string' },
  'max-connections': { type: 'string' },
  'allow-origin': { type: 'string', multiple: true },
  'reports-max-count': { type: 'string' },
  'reports-max-bytes': { type: 'string' },
  'reports-per-minute': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parseOptions(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
}

function parseLimits(values: ReturnType<typeof parseOptions>['values']): Limits | string {
  const limits: { -readonly [K in keyof Limits]: Limits[K] } = {};
  const counts = [
    ['max-connections', 'maxConnections', 1],
    ['reports-max-count', 'maxReports', 1],
    ['reports-max-bytes', 'maxReportsBytes', MIN_REPORTS_MAX_BYTES],
    ['reports-per-minute', 'reportsPerMinute', 1],
  ] as const;
  for (const [flag, key, min] of counts) {
    const text = values[flag];
    if (text === undefined) continue;
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) return `--${flag} must be a whole number of at least ${min} (got "${text}")`;
    limits[key] = value;
  }
  const origins: string[] = [];
  for (const text of values['allow-origin'] ?? []) {
    const origin = parseOrigin(text);
    if (origin === undefined) return `--allow-origin must be an origin such as https://console.example.com or http://localhost:3000, without a path (got "${text}")`;
    origins.push(origin);
  }
  if (origins.length > 0) limits.allowedOrigins = origins;
  return limits;
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
    return ExitCode.NO_INPUT;
  }
  if (stat) return 'ok';
  try {
    fs.mkdirSync(feedDir, { recursive: true });
  } catch (error) {
    process.stderr.write(`outpost-server: cannot create the feed folder ${feedDir}: ${error instanceof Error ? error.message : String(error)}\n`);
    return ExitCode.CANT_CREATE;
  }
  log(`the feed folder ${feedDir} did not exist: created it (an empty feed: nothing to serve until a release is published)`);
  return 'ok';
}
