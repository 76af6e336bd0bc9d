import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeError } from '../app/base/errors.js';
import { ExitCode } from '../app/common/exit-codes.js';
import { isRedisUrl } from '../app/common/publish-events.js';
import { parseOrigin } from './origins.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_AGENT } from './push.js';
import { redactSecrets } from '../app/base/redact.js';
import { DEFAULT_SINCE, failuresMain } from './failures-command.js';
import { DEFAULT_MAX_REPORTS_BYTES, MIN_REPORTS_MAX_BYTES } from './file-reports.js';
import { REPORTS_STREAM } from './redis-reports.js';
import { DEFAULT_MAX_REPORTS } from './report-store.js';
import { DEFAULT_REPORTS_PER_MINUTE } from './reports-intake.js';
import { AGENTS_FILE, FeedServer, type FeedServerOptions } from './server.js';
import { DEFAULT_ENROLLMENTS_PER_MINUTE } from './agent-auth.js';
import { agentsMain, newEnrollmentSecretMain, readEnrollmentSecrets } from './agents-command.js';


/** The agent's default backend is http://127.0.0.1:8470 (DEFAULT_CONFIG): a bare `outpost-server` matches it. */
export const DEFAULT_PORT = 8470;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_REPORTS = 'reports.jsonl';

export const USAGE = `Usage: outpost-server --feed DIR [--port N] [--host HOST] [--reports FILE] [LIMITS]
       outpost-server failures [--reports FILE | --redis URL] [--since DURATION] [--json]
       outpost-server agents list|revoke AGENT_ID [--agents FILE | --redis URL] [--json]
       outpost-server new-enrollment-secret

The reference Outpost backend: serves the signed update feed, pushes "update required" to the
connected agents when a new feed version is published, and stores the agents' error reports.

  --feed DIR       the feed folder (the TUF repository outpost-release writes); created empty if missing
  --port N         TCP port, 0 for any free one (default ${DEFAULT_PORT}, the agent's default backend)
  --host HOST      address to listen on (default ${DEFAULT_HOST}: this machine only; 0.0.0.0 for every interface)
  --reports FILE   the JSON Lines file error reports are appended to (default ./${DEFAULT_REPORTS}, in the current
                   folder); it must not be inside the feed folder, which anyone can download
  --redis URL      for several nodes behind a balancer (redis:// or rediss://): learn of publishes from Redis
                   pub/sub, not by watching the feed folder (outpost-release publish --redis announces), and
                   store reports in the Redis stream ${REPORTS_STREAM}, shared by the nodes and de-duplicated
                   across them (--reports and --reports-max-bytes are then ignored). While Redis is down,
                   reports are answered 503 and agents keep them. Run Redis with appendonly yes
  -h, --help       print this text

Agents that authenticate (without --enrollment-secrets, anyone who reaches the server may connect and report):
  --enrollment-secrets FILE  the organisation's enrollment secrets, one per line (# comments; more than one while
                   replacing one; chmod 600): agents enroll with one (POST /enroll) for a token of their own,
                   and /ws and POST /reports then require that token (401 without, 403 revoked). The feed
                   stays public: its signatures protect it
  --agents FILE    where enrolled agents are kept, by token hash (default: ${AGENTS_FILE} beside the reports
                   file; with --redis, in Redis, shared by the nodes)

Limits (what a stranger can cost the server):
  --max-connections N      open WebSockets at /ws at most (default ${DEFAULT_MAX_CONNECTIONS}); past it an upgrade is
                           answered 503 "server full" and agents retry with their backoff
  --allow-origin URL       a web page origin (https://host[:port]) that may use /ws and POST /reports;
                           repeatable. A request with any other Origin header is refused with 403. Agents
                           send none. Default: none allowed, so no web page can use either
  --reports-max-count N    reports kept at most (default ${DEFAULT_MAX_REPORTS}); with --redis, the stream's MAXLEN ~ (about)
  --reports-max-bytes N    bytes of the reports file at most (default ${DEFAULT_MAX_REPORTS_BYTES}, at least ${MIN_REPORTS_MAX_BYTES}); past
                           either bound the oldest reports are dropped, a quarter of the bound at a time
                           (counted in GET /health's reports_dropped, and logged)
  (per agent, with --enrollment-secrets: ${DEFAULT_MAX_CONNECTIONS_PER_AGENT} push channels, ${DEFAULT_ENROLLMENTS_PER_MINUTE} enrollments a minute; more are refused with 429)
  --push-spread-s N        push a publish over N seconds rather than at once (default 0): every agent pushed
                           checks the feed, so a large fleet's checks spread out instead of all reaching
                           the feed's origin in the same second (docs/fleet.md)
  --reports-per-minute N   reports taken per minute from one agent_id (default ${DEFAULT_REPORTS_PER_MINUTE}); more are answered
                           429 with Retry-After, which agents take as "send it later"

Endpoints: GET /feed/<path> (Range supported), /ws (WebSocket push), POST /reports, GET /health.
Once listening it prints one line: outpost-server listening on http://HOST:PORT (feed DIR)
Stops cleanly on SIGINT or SIGTERM (exit 0).
Exit codes: 64 bad arguments; 66 the feed path is not a folder; 69 cannot start (port in use,
reports file unwritable...); 73 cannot create the feed folder; 78 unusable enrollment secrets file.

outpost-server agents: the enrolled agents, in the store the servers use (--agents FILE, default
./${AGENTS_FILE}, or --redis URL), while they run. list prints them (--json for scripts); revoke AGENT_ID
refuses the agent from then on: its push channels are closed on every node, its reports refused, and it
cannot enroll again. Exit codes: 0 done; 64 bad arguments; 66 no such file or agent; 69 Redis unreachable.

outpost-server new-enrollment-secret: prints a new random secret, for --enrollment-secrets and installers.

outpost-server failures: the failures (codes ERR_*, not the EVT_* events) the store received in the
last DURATION, grouped by code and agent version, with how many reports and distinct agents, the
most reported first. It reads the store a server writes, while the server runs:
  --reports FILE     the server's reports file (default ./${DEFAULT_REPORTS})
  --redis URL        the stream the nodes started with --redis share
  --since DURATION   the window: N followed by s, m, h or d (default ${DEFAULT_SINCE})
  --json             one JSON object: {"since", "groups": [{"code", "agent_version", "reports", "agents",
                     "last_received"}]}, for scripts
Exit codes: 0 printed (no failures included); 64 bad arguments; 66 no reports file; 69 Redis
unreachable; 74 the reports file unreadable.
`;

type Limits = Pick<FeedServerOptions, 'maxConnections' | 'allowedOrigins' | 'maxReports' | 'maxReportsBytes' | 'reportsPerMinute' | 'pushSpreadMs'>;
type Parsed =
  | { help: true }
  | {
      help: false;
      feedDir: string;
      port: number;
      host: string;
      reportsFile: string;
      redisUrl: string | undefined;
      limits: Limits;
      ignored: readonly string[];
      enrollmentSecretsFile: string | undefined;
      agentsFile: string | undefined;
    };

/** `outpost-server ARGS`: runs until SIGINT/SIGTERM; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const io = { now: () => new Date(), stdout: (text: string) => process.stdout.write(text), stderr: (text: string) => process.stderr.write(text), usage: USAGE };
  if (argv[0] === 'agents') return agentsMain(argv.slice(1), io, AGENTS_FILE);
  if (argv[0] === 'new-enrollment-secret') return newEnrollmentSecretMain(argv.slice(1), io);
  if (argv[0] === 'failures') {
    return failuresMain(argv.slice(1), { ...io, defaultReportsFile: DEFAULT_REPORTS });
  }
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
  const enrollment = parsed.enrollmentSecretsFile === undefined ? { secrets: [] } : readEnrollmentSecrets(parsed.enrollmentSecretsFile);
  if (typeof enrollment === 'string') {
    process.stderr.write(`outpost-server: ${enrollment}\n`);
    return ExitCode.CONFIG;
  }
  if (enrollment.warning) log(`warning: ${enrollment.warning}`);

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
      server = await FeedServer.start({ feedDir: parsed.feedDir, host: parsed.host, port: parsed.port, reportsFile: parsed.reportsFile, log, ...(parsed.redisUrl && { redisUrl: parsed.redisUrl }), ...parsed.limits, enrollmentSecrets: enrollment.secrets, ...(parsed.agentsFile && { agentsFile: parsed.agentsFile }) });
    } catch (error) {
      process.stderr.write(`outpost-server: cannot start: ${describeError(error)}\n`);
      return ExitCode.UNAVAILABLE;
    }
    process.stdout.write(`outpost-server listening on ${server.url} (feed ${parsed.feedDir})\n`);
    log(`reports go to ${parsed.redisUrl ? `the Redis stream ${REPORTS_STREAM} at ${redactSecrets(parsed.redisUrl)}` : parsed.reportsFile}; stop with Ctrl+C`);
    if (parsed.ignored.length > 0) log(`${parsed.ignored.join(' and ')} ignored: with --redis, reports go to the Redis stream (bounded by --reports-max-count)`);
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
    return describeError(error);
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
  const redisUrl = values.redis;
  if (redisUrl !== undefined && !isRedisUrl(redisUrl)) return `--redis must be a redis:// or rediss:// URL (got "${redisUrl}")`;
  // Ignored rather than refused with --redis: nodes started with both before reports went to Redis keep starting.
  const ignored = redisUrl === undefined ? [] : (['reports', 'reports-max-bytes'] as const).filter((flag) => values[flag] !== undefined).map((flag) => `--${flag}`);
  if (redisUrl === undefined && isInside(feedDir, reportsFile)) {
    return `the reports file ${reportsFile} is inside the feed folder ${feedDir}, which is served to anyone: choose another --reports`;
  }
  const limits = parseLimits(values);
  if (typeof limits === 'string') return limits;
  const enrollmentSecretsFile = values['enrollment-secrets'] === undefined ? undefined : path.resolve(values['enrollment-secrets']);
  const agentsFile = values.agents === undefined ? undefined : path.resolve(values.agents);
  if (agentsFile !== undefined && enrollmentSecretsFile === undefined) return '--agents goes with --enrollment-secrets (without secrets, agents do not enroll)';
  if (agentsFile !== undefined && redisUrl !== undefined) return '--agents is for one node: with --redis, enrolled agents are kept in Redis';
  for (const [flag, file] of [['enrollment-secrets', enrollmentSecretsFile], ['agents', agentsFile]] as const) {
    if (file !== undefined && isInside(feedDir, file)) return `the --${flag} file ${file} is inside the feed folder ${feedDir}, which is served to anyone: keep it elsewhere`;
  }
  return { help: false, feedDir, port, host, reportsFile, redisUrl, limits, ignored, enrollmentSecretsFile, agentsFile };
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
  'push-spread-s': { type: 'string' },
  'enrollment-secrets': { type: 'string' },
  agents: { type: 'string' },
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
  const spread = values['push-spread-s'];
  if (spread !== undefined) {
    if (!/^\d+$/.test(spread) || Number(spread) > 3600) return `--push-spread-s must be a whole number of seconds from 0 to 3600 (got "${spread}")`;
    limits.pushSpreadMs = Number(spread) * 1000;
  }
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
    process.stderr.write(`outpost-server: cannot create the feed folder ${feedDir}: ${describeError(error)}\n`);
    return ExitCode.CANT_CREATE;
  }
  log(`the feed folder ${feedDir} did not exist: created it (an empty feed: nothing to serve until a release is published)`);
  return 'ok';
}
