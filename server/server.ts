import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describeError } from '../app/base/errors.js';
import { ENROLL_PATH } from '../app/common/enrollment.js';
import { AgentAuth, DEFAULT_ENROLLMENTS_PER_MINUTE, refuseCaller } from './agent-auth.js';
import { FileAgentRegistry } from './agent-registry.js';
import { replyJson } from './http-replies.js';
import { OriginPolicy } from './origins.js';
import { RedisAgentRegistry } from './redis-agent-registry.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_AGENT, FeedWatcher, PushHub } from './push.js';
import { RedisLink } from './redis-link.js';
import type { RedisState } from './redis-outages.js';
import { RedisPublishes } from './redis-publishes.js';
import { DEFAULT_MAX_REPORTS_BYTES, FileReportStore } from './file-reports.js';
import { RedisReportStore } from './redis-reports.js';
import { DEFAULT_MAX_REPORTS } from './report-store.js';
import { DEFAULT_REPORTS_PER_MINUTE, ReportsIntake } from './reports-intake.js';
import { FEED_PREFIX, FeedFiles } from './static-files.js';

export interface FeedServerOptions {
  /** The TUF repository to serve (must exist; `metadata/` is created if missing). */
  readonly feedDir: string;
  readonly host: string;
  /** 0: any free port (see FeedServer.port). */
  readonly port: number;
  /** The append-only JSON Lines file of error reports (created if missing); unused with redisUrl. */
  readonly reportsFile: string;
  readonly log?: (line: string) => void;
  readonly now?: () => Date;
  /** WebSocket ping period; a client that misses one pong is dropped at the next. Default 30 s. */
  readonly pingIntervalMs?: number;
  /** The fallback stat poll of timestamp.json, for when fs.watch misses a rename. Default 1 s. */
  readonly pollIntervalMs?: number;
  /** Open WebSockets at /ws at most; more are refused with 503. Default DEFAULT_MAX_CONNECTIONS. */
  readonly maxConnections?: number;
  /**
   * Origins of the web pages that may use /ws and POST /reports (e.g. https://console.example.com).
   * A request with any other Origin header is refused with 403; agents send none. Default: none.
   */
  readonly allowedOrigins?: readonly string[];
  /** Bounds of the reports file (the Redis stream: the count only): past either, the oldest reports are dropped. Defaults DEFAULT_MAX_REPORTS, DEFAULT_MAX_REPORTS_BYTES. */
  readonly maxReports?: number;
  readonly maxReportsBytes?: number;
  /** Reports accepted per minute from one agent_id; more get 429 with Retry-After. Default DEFAULT_REPORTS_PER_MINUTE. */
  readonly reportsPerMinute?: number;
  /**
   * Learn of publishes from Redis pub/sub (redis-publishes.ts) instead of watching the feed folder:
   * for several nodes behind a balancer, whatever serves the feed. Reports then go to a Redis stream
   * shared by the nodes (redis-reports.ts), not to reportsFile.
   */
  readonly redisUrl?: string;
  /**
   * The organisation's enrollment secrets: with any, agents must enroll (`POST /enroll`) and present
   * their token for reports and the push channel (agent-auth.ts). None: anyone who reaches the
   * server may connect and report, as a server on loopback can afford.
   */
  readonly enrollmentSecrets?: readonly string[];
  /** Where enrolled agents are kept when there is no redisUrl (with one, in Redis). Default: `agents.jsonl` beside the reports file. */
  readonly agentsFile?: string;
  /** Enrollments accepted per minute for one agent id. Default DEFAULT_ENROLLMENTS_PER_MINUTE. */
  readonly enrollmentsPerMinute?: number;
  /** Open push channels of one authenticated agent at most. Default DEFAULT_MAX_CONNECTIONS_PER_AGENT. */
  readonly maxConnectionsPerAgent?: number;
  /** A publish is pushed over this window, not at once (PushHub's spreadMs). Default 0. */
  readonly pushSpreadMs?: number;
}

/** Where a node learns of publishes: the feed folder's timestamp, or Redis. */
interface PublishSource {
  /** The newest feed version known, or null before any. */
  readonly version: number | null;
  close(): void | Promise<void>;
}

/** What `GET /health` answers. */
export interface Health {
  readonly status: 'ok';
  readonly feed_version: number | null;
  readonly agents_connected: number;
  readonly reports_stored: number;
  /** Reports dropped since start to keep the store within its bounds (oldest first). */
  readonly reports_dropped: number;
  /** This node's link to Redis (RedisState), or null for a single node without Redis. */
  readonly redis: RedisState | null;
}

const DEFAULT_PING_INTERVAL_MS = 30_000;
/** The agents file's default name, beside the reports file. */
export const AGENTS_FILE = 'agents.jsonl';
/** How soon a revocation by the operator command reaches a single node's open push channels. */
const AGENTS_FOLLOW_MS = 1_000;
const DEFAULT_POLL_INTERVAL_MS = 1_000;

/**
 * Headers must arrive within 10 s and a whole request (a report body) within 30 s, so slow or stuck
 * clients cannot hold connections open; responses (downloads) are not limited by these, only by the
 * idle timeout: a download whose client has read nothing for 2 min is dropped (it resumes with a
 * Range request). An idle keep-alive connection is closed after 5 s (Node's default, stated here on
 * purpose). WebSocket connections are exempt from all of these (ws clears the socket timeout);
 * ping/pong watches them instead.
 */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const IDLE_SOCKET_TIMEOUT_MS = 120_000;

/**
 * The reference backend: the signed feed as static files (`/feed/...`), a WebSocket push when a new
 * feed version is published (`/ws`), error report intake (`POST /reports`) and `GET /health`.
 * Everything it starts (HTTP server, watcher, timers, sockets, the reports file) it closes in close().
 */
export class FeedServer {
  readonly url: string;
  readonly port: number;
  readonly #http: http.Server;
  readonly #files: FeedFiles;
  readonly #reports: ReportsIntake;
  readonly #push: PushHub;
  readonly #publishes: PublishSource;
  /** Undefined: agents are not authenticated (no enrollment secrets). */
  readonly #auth: AgentAuth | undefined;
  /** Undefined: a single node, without Redis. */
  readonly #redis: RedisLink | undefined;
  readonly #log: (line: string) => void;
  #closing: Promise<void> | undefined;

  private constructor(parts: { http: http.Server; files: FeedFiles; reports: ReportsIntake; push: PushHub; publishes: PublishSource; auth: AgentAuth | undefined; redis: RedisLink | undefined; log: (line: string) => void; host: string; port: number }) {
    this.#http = parts.http;
    this.#files = parts.files;
    this.#reports = parts.reports;
    this.#push = parts.push;
    this.#publishes = parts.publishes;
    this.#auth = parts.auth;
    this.#redis = parts.redis;
    this.#log = parts.log;
    this.port = parts.port;
    this.url = `http://${parts.host.includes(':') ? `[${parts.host}]` : parts.host}:${parts.port}`;
  }

  static async start(options: FeedServerOptions): Promise<FeedServer> {
    const log = options.log ?? (() => undefined);
    const root = await fs.promises.realpath(options.feedDir).catch((error: unknown) => {
      throw new Error(`The feed folder ${options.feedDir} cannot be opened: ${describeError(error)}`, { cause: error });
    });
    if (!(await fs.promises.stat(root)).isDirectory()) throw new Error(`The feed folder ${options.feedDir} is not a folder.`);

    const origins = new OriginPolicy(options.allowedOrigins ?? []);
    // One link for the node's users of Redis (two connections), with one state: an outage is logged once, and shown by /health.
    const redis = options.redisUrl ? RedisLink.open(options.redisUrl, log) : undefined;
    // A revocation (this node's, another node's, or the operator command's) closes the agent's push channel here.
    const closeChannels = (agentId: string) => log(`agents: ${agentId} was revoked: closed its ${push.disconnect(agentId)} push channel(s) on this node`);
    const auth = await startAgentAuth(options, origins, redis, log, closeChannels);
    const push = new PushHub({
      pingIntervalMs: options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      origins,
      log,
      spreadMs: options.pushSpreadMs ?? 0,
      ...(auth && { identify: (authorization: string | undefined) => auth.identify(authorization), maxPerAgent: options.maxConnectionsPerAgent ?? DEFAULT_MAX_CONNECTIONS_PER_AGENT }),
    });
    const now = options.now ?? (() => new Date());
    const maxReports = options.maxReports ?? DEFAULT_MAX_REPORTS;
    const store = await (
      redis
        ? RedisReportStore.open({ link: redis, log, maxReports })
        : FileReportStore.open({ file: options.reportsFile, log, now, maxReports, maxBytes: options.maxReportsBytes ?? DEFAULT_MAX_REPORTS_BYTES })
    ).catch(async (error: unknown) => {
      push.close();
      await auth?.close();
      redis?.close();
      throw error;
    });
    const reports = new ReportsIntake({ store, log, now, perAgentPerMinute: options.reportsPerMinute ?? DEFAULT_REPORTS_PER_MINUTE, origins });
    let publishes: PublishSource | undefined;
    const server = http.createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS });
    server.setTimeout(IDLE_SOCKET_TIMEOUT_MS);
    try {
      const onPublish = (version: number) => {
        const sent = push.broadcast({ type: 'agent:update_required', feed_version: version });
        const spread = options.pushSpreadMs ?? 0;
        log(`feed version ${version} published: ${spread > 0 && sent > 0 ? `pushing to ${sent} agent(s) over ${spread / 1000} s` : `pushed to ${sent} agent(s)`}`);
      };
      publishes = redis
        ? RedisPublishes.start({ link: redis, log, onPublish })
        : await FeedWatcher.start({ feedDir: root, pollIntervalMs: options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS, log, onPublish });
      const port = await listen(server, options.host, options.port);
      const feedServer = new FeedServer({ http: server, files: new FeedFiles(root), reports, push, publishes, auth, redis, log, host: options.host, port });
      server.on('request', (req, res) => feedServer.#route(req, res));
      // After start, an error here is a failed accept (out of file descriptors...): worth a line, not a crash.
      server.on('error', (error) => log(`HTTP server error: ${error.message}`));
      push.attach(server);
      return feedServer;
    } catch (error) {
      await publishes?.close();
      push.close();
      server.close();
      await reports.close();
      await auth?.close();
      redis?.close();
      throw error;
    }
  }

  /** The newest feed version published (the feed's timestamp.json, or as Redis announced it), or null while there is none. */
  get feedVersion(): number | null {
    return this.#publishes.version;
  }

  /** WebSocket clients (agents) connected now. */
  get agentsConnected(): number {
    return this.#push.connected;
  }

  /**
   * Pushes `agent:update_required` to every connected agent now, without a publish; returns how
   * many were sent it. For operators' tools and the fan-out benchmark (a publish does this itself).
   */
  broadcastUpdateRequired(feedVersion: number): number {
    return this.#push.broadcast({ type: 'agent:update_required', feed_version: feedVersion });
  }

  health(): Health {
    return {
      status: 'ok',
      feed_version: this.#publishes.version,
      agents_connected: this.#push.connected,
      reports_stored: this.#reports.stored,
      reports_dropped: this.#reports.dropped,
      redis: this.#redis?.state ?? null,
    };
  }

  /** Stops everything: no new connections, open ones (keep-alive, downloads, WebSockets) closed now. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#publishes.close();
      this.#push.close();
      const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
      this.#http.closeAllConnections();
      await closed;
      await this.#reports.close();
      await this.#auth?.close();
      this.#redis?.close();
    })();
    return this.#closing;
  }

  /** `POST /reports`, from an enrolled agent when agents authenticate: a report may then name only the agent whose token it carries. */
  async #report(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this.#auth) return this.#reports.handle(req, res);
    const caller = await this.#auth.identify(req.headers.authorization);
    if (!caller.ok) return refuseCaller(req, res, caller);
    return this.#reports.handle(req, res, caller.agentId);
  }

  #route(req: http.IncomingMessage, res: http.ServerResponse): void {
    // The raw path, never a URL-normalized one: `/feed/../x` must reach the feed's checks as written.
    const rawPath = req.url?.split('?')[0] ?? '';
    const handled = rawPath.startsWith(FEED_PREFIX)
      ? this.#files.handle(req, res, rawPath)
      : rawPath === '/reports'
        ? this.#report(req, res)
        : rawPath === ENROLL_PATH && this.#auth
          ? this.#auth.handleEnroll(req, res)
          : Promise.resolve(rawPath === '/health' ? this.#health(req, res) : notFound(res));
    handled.catch((error: unknown) => {
      this.#log(`${req.method} ${rawPath} failed: ${describeError(error)}`);
      if (res.headersSent) res.destroy();
      else replyJson(res, 500, { error: 'internal error' });
    });
  }

  #health(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      replyJson(res, 405, { error: 'use GET' });
      return;
    }
    replyJson(res, 200, this.health());
  }
}

/** Authentication of agents when the server has enrollment secrets, with the registry in Redis (several nodes) or a file beside the reports. */
async function startAgentAuth(options: FeedServerOptions, origins: OriginPolicy, redis: RedisLink | undefined, log: (line: string) => void, onRevoked: (agentId: string) => void): Promise<AgentAuth | undefined> {
  const secrets = options.enrollmentSecrets ?? [];
  if (secrets.length === 0) {
    log('agents are not authenticated (no enrollment secrets): anyone who can reach this server may open a push channel and send reports');
    return undefined;
  }
  const now = options.now ?? (() => new Date());
  const registry = redis
    ? new RedisAgentRegistry(redis, { now, log, onRevoked })
    : await FileAgentRegistry.open({ file: options.agentsFile ?? path.join(path.dirname(options.reportsFile), AGENTS_FILE), now, log, followMs: AGENTS_FOLLOW_MS, onRevoked });
  log(`agents authenticate: ${secrets.length} enrollment secret(s); enrolled agents kept in ${redis ? 'Redis' : (options.agentsFile ?? AGENTS_FILE)}`);
  return new AgentAuth({ secrets, registry, origins, enrollmentsPerMinute: options.enrollmentsPerMinute ?? DEFAULT_ENROLLMENTS_PER_MINUTE, now, log });
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(new Error(`Cannot listen on ${host}:${port}: ${error.message}`, { cause: error }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

function notFound(res: http.ServerResponse): void {
  replyJson(res, 404, { error: 'not found' });
}


