import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { describeError } from '../app/base/errors.js';
import { LivePeers, refuseUpgrade } from '../app/base/websocket-peers.js';
import { PUSH_MAX_BYTES, type UpdateRequired } from '../app/common/push.js';
import type { Caller } from './agent-auth.js';
import type { OriginPolicy } from './origins.js';

/** The only path that accepts a WebSocket upgrade. */
export const PUSH_PATH = '/ws';

/** Each connection holds a file descriptor and some memory; bench/server-fanout.ts measures up to this many. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** The release tool writes this file last (atomically, by rename): its replacement completes a publish. */
export const TIMESTAMP_FILE = path.join('metadata', 'timestamp.json');

/** A timestamp.json is a few hundred bytes; anything this big is not one and is not read. */
const TIMESTAMP_MAX_BYTES = 1024 * 1024;

/** The one field of a TUF timestamp the server needs. Signatures are the agent's business, not ours. */
const TimestampVersion = z.object({ signed: z.object({ _type: z.literal('timestamp'), version: z.number().int().nonnegative() }) });

export interface FeedWatcherOptions {
  readonly feedDir: string;
  /** The fallback poll, for file systems where fs.watch misses a rename (network shares, some containers). */
  readonly pollIntervalMs: number;
  readonly log: (line: string) => void;
  /** Called once per new highest version of timestamp.json seen after start. */
  readonly onPublish: (version: number) => void;
}

/**
 * Watches `<feed>/metadata/timestamp.json` and reports each publish: fs.watch for speed, plus a
 * cheap stat poll because fs.watch is not reliable everywhere. The file is read only when its stat
 * changes, and a publish is reported only for a version higher than any seen before, so the two
 * sources, a rewrite of the same version, or an operator restoring an older feed never push twice.
 */
export class FeedWatcher {
  readonly #options: FeedWatcherOptions;
  readonly #file: string;
  readonly #poll: NodeJS.Timeout;
  #watcher: fs.FSWatcher | undefined;
  #version: number | null = null;
  #highest = -1;
  /** ino:size:mtime:ctime of the file last read, or 'missing'. */
  #signature: string | undefined;
  #checking: Promise<void> | undefined;
  #checkAgain = false;
  #closed = false;

  private constructor(options: FeedWatcherOptions) {
    this.#options = options;
    this.#file = path.join(options.feedDir, TIMESTAMP_FILE);
    this.#poll = setInterval(() => void this.#check(), options.pollIntervalMs).unref();
  }

  /** Reads the current version (never reported: agents check on connect anyway), then watches. */
  static async start(options: FeedWatcherOptions): Promise<FeedWatcher> {
    const metadata = path.join(options.feedDir, path.dirname(TIMESTAMP_FILE));
    await fs.promises.mkdir(metadata, { recursive: true });
    const watcher = new FeedWatcher(options);
    await watcher.#check();
    watcher.#watch(metadata);
    return watcher;
  }

  /** The version of the timestamp.json on disk, or null while the feed has none (or an unreadable one). */
  get version(): number | null {
    return this.#version;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#poll);
    this.#watcher?.close();
  }

  #watch(folder: string): void {
    const name = path.basename(TIMESTAMP_FILE);
    try {
      this.#watcher = fs.watch(folder, { persistent: false }, (_event, filename) => {
        if (filename === null || filename === name) void this.#check();
      });
      this.#watcher.on('error', (error) => {
        this.#options.log(`feed watcher: fs.watch failed (${error.message}); relying on the ${this.#options.pollIntervalMs} ms poll`);
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch (error) {
      this.#options.log(`feed watcher: cannot watch ${folder} (${describeError(error)}); relying on the ${this.#options.pollIntervalMs} ms poll`);
    }
  }

  /** One check at a time; a change seen during a check triggers one more after it. */
  #check(): Promise<void> {
    if (this.#checking) {
      this.#checkAgain = true;
      return this.#checking;
    }
    this.#checking = (async () => {
      do {
        this.#checkAgain = false;
        await this.#read();
      } while (this.#checkAgain && !this.#closed);
    })().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #read(): Promise<void> {
    const initial = this.#signature === undefined;
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(this.#file);
    } catch {
      if (this.#signature !== 'missing') this.#options.log(`feed watcher: no ${TIMESTAMP_FILE} in the feed yet (nothing published)`);
      this.#signature = 'missing';
      this.#version = null;
      return;
    }
    const signature = `${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
    if (signature === this.#signature) return;
    let text: string;
    try {
      if (stat.size > TIMESTAMP_MAX_BYTES) throw new Error(`larger than ${TIMESTAMP_MAX_BYTES} bytes`);
      text = await fs.promises.readFile(this.#file, 'utf8');
    } catch (error) {
      this.#signature = signature;
      this.#options.log(`feed watcher: cannot read ${TIMESTAMP_FILE}: ${describeError(error)}`);
      return;
    }
    // The stat may be older than the text (replaced in between); the next check sees the new stat
    // and reads the same version again, which pushes nothing.
    this.#signature = signature;
    const version = parseTimestampVersion(text);
    if (version === undefined) {
      // A writer that does not rename (or a broken file): wait for the next change.
      this.#options.log(`feed watcher: ${TIMESTAMP_FILE} is not a TUF timestamp with a signed.version; ignored until it changes`);
      return;
    }
    this.#version = version;
    if (version <= this.#highest) return;
    this.#highest = version;
    if (!initial && !this.#closed) this.#options.onPublish(version);
  }
}

/** `signed.version` of a TUF timestamp document, or undefined if the text is not one. */
export function parseTimestampVersion(text: string): number | undefined {
  try {
    const parsed = TimestampVersion.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.signed.version : undefined;
  } catch {
    return undefined;
  }
}

export interface PushHubOptions {
  /** How often each client is pinged; a client that has not answered the previous ping by then is dropped. */
  readonly pingIntervalMs: number;
  /** Open connections at most; an upgrade past it is refused with 503 (see #upgrade). */
  readonly maxConnections: number;
  /** Web pages allowed to connect (agents send no Origin); others are refused with 403. */
  readonly origins: OriginPolicy;
  readonly log: (line: string) => void;
  /**
   * Who may connect, from the upgrade's Authorization header (agent-auth.ts), or undefined: anyone
   * (a server without enrollment secrets).
   */
  readonly identify?: (authorization: string | undefined) => Promise<Caller>;
  /** Open connections of one authenticated agent at most (an agent keeps one; a second covers a reconnect racing the old socket's close). */
  readonly maxPerAgent?: number;
  /**
   * A push goes out over this window rather than at once (see broadcast): every agent pushed checks
   * the feed, and a fleet's agents checking in the same second is a spike at the CDN's origin.
   * Default 0: at once.
   */
  readonly spreadMs?: number;
}

/** A spread push goes out in slices this far apart. */
const SPREAD_SLICE_MS = 100;

/** An agent needs one channel; the second covers a reconnect that races the close of its old socket. */
export const DEFAULT_MAX_CONNECTIONS_PER_AGENT = 2;

/**
 * The WebSocket endpoint agents keep open to hear about publishes. The traffic is one way: a push is
 * only a hint to check the signed feed now, and agents send nothing but pongs, so anything they send
 * is dropped and frames are capped at PUSH_MAX_BYTES. Half-open connections (a laptop that went to
 * sleep) are found by ping/pong and terminated, so `connected` counts live agents.
 */
export class PushHub {
  readonly #options: PushHubOptions;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: PUSH_MAX_BYTES, perMessageDeflate: false, clientTracking: false });
  readonly #clients: LivePeers<WebSocket>;
  readonly #servers = new Map<http.Server, (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void>();
  /** Upgrades refused since the hub became full, or undefined while it is not: logged once when full, once when not. */
  #refusedWhileFull: number | undefined;
  /** The open connections of each authenticated agent: its quota, and what a revocation closes. */
  readonly #byAgent = new Map<string, Set<WebSocket>>();
  /** The slices of a spread push still to send; a newer push replaces them. */
  #spreading: NodeJS.Timeout | undefined;

  constructor(options: PushHubOptions) {
    if (!Number.isInteger(options.maxConnections) || options.maxConnections < 1) throw new RangeError(`maxConnections must be a positive integer, got ${options.maxConnections}`);
    this.#options = options;
    this.#clients = new LivePeers(options.pingIntervalMs, (dropped) => options.log(`push: dropped ${dropped.length} agent connection(s) that missed a pong`));
  }

  /** Takes the upgrade requests of `server`: PUSH_PATH becomes a WebSocket, any other path is refused with 404. */
  attach(server: http.Server): void {
    const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head);
    this.#servers.set(server, onUpgrade);
    server.on('upgrade', onUpgrade);
  }

  /** Open connections. */
  get connected(): number {
    return this.#clients.size;
  }

  /**
   * Sends `message` to every open client and returns how many it is for. Serialized once into a
   * Buffer that every send shares (ws frames it without copying: server frames are not masked).
   * With spreadMs, the clients, shuffled, get it in slices over that window, so that their checks
   * spread too and no send loop holds the event loop for long; a newer push replaces what is left of
   * one under way (its receivers check the newer feed anyway). Agents connecting meanwhile check
   * when they connect.
   */
  broadcast(message: UpdateRequired): number {
    const data = Buffer.from(JSON.stringify(message));
    clearInterval(this.#spreading);
    this.#spreading = undefined;
    const slices = Math.floor((this.#options.spreadMs ?? 0) / SPREAD_SLICE_MS);
    // At once: straight from the set, as fast as a bare ws broadcast (bench/server-fanout.ts).
    if (slices <= 1) return send(this.#clients, data);
    const clients = [...this.#clients].filter((client) => client.readyState === WebSocket.OPEN);
    shuffle(clients);
    const perSlice = Math.ceil(clients.length / slices);
    let next = 0;
    const sendSlice = () => {
      send(clients.slice(next, next + perSlice), data);
      next += perSlice;
      if (next < clients.length) return;
      clearInterval(this.#spreading);
      this.#spreading = undefined;
    };
    sendSlice();
    if (next < clients.length) this.#spreading = setInterval(sendSlice, SPREAD_SLICE_MS);
    return clients.length;
  }

  /** Closes every connection of `agentId` (revoked): returns how many. */
  disconnect(agentId: string): number {
    const sockets = this.#byAgent.get(agentId);
    for (const socket of sockets ?? []) socket.terminate();
    return sockets?.size ?? 0;
  }

  /** Stops accepting upgrades and terminates every client (a shutdown does not wait on close handshakes). */
  close(): void {
    for (const [server, onUpgrade] of this.#servers) server.off('upgrade', onUpgrade);
    this.#servers.clear();
    clearInterval(this.#spreading);
    this.#clients.close();
    this.#refusedWhileFull = undefined;
    this.#wss.close();
  }

  #upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroySocket);
    if (req.url?.split('?')[0] !== PUSH_PATH) {
      refuseUpgrade(socket, 404, 'not found');
      return;
    }
    if (!this.#options.origins.allows(req.headers.origin)) {
      refuseUpgrade(socket, 403, 'web pages may not connect unless their origin is allowed (outpost-server --allow-origin)');
      return;
    }
    if (this.#refusedFull(socket)) return;
    const { identify } = this.#options;
    if (!identify) {
      // ws accepts synchronously (no verifyClient), so the count above cannot be overtaken by a handshake in flight.
      this.#wss.handleUpgrade(req, socket, head, (client) => this.#accept(client, undefined));
      return;
    }
    void identify(req.headers.authorization).then((caller) => {
      if (socket.destroyed) return;
      // JSON, as /reports answers: the agent reads `code` (AGENT_REVOKED) from it.
      if (!caller.ok) return void refuseUpgrade(socket, caller.status, JSON.stringify({ error: caller.error, ...(caller.code && { code: caller.code }) }), 'application/json');
      const open = this.#byAgent.get(caller.agentId)?.size ?? 0;
      const perAgent = this.#options.maxPerAgent ?? DEFAULT_MAX_CONNECTIONS_PER_AGENT;
      if (open >= perAgent) return void refuseUpgrade(socket, 429, `agent ${caller.agentId} has ${open} push channel(s) open already, the most one agent may have`);
      // Counted again: other upgrades may have completed while this one was being identified.
      if (this.#refusedFull(socket)) return;
      this.#wss.handleUpgrade(req, socket, head, (client) => this.#accept(client, caller.agentId));
    });
  }

  /** Refuses the upgrade (503) when no connection more fits, logging when the hub becomes full; returns whether it did. */
  #refusedFull(socket: Duplex): boolean {
    const { maxConnections, log } = this.#options;
    // Refused at the upgrade with 503, not accepted and then closed with 1013 (try again later): a
    // refused upgrade costs no WebSocket, and the agent's push client counts a connection that never
    // opened as a failure, so its backoff grows; one that opened counts as a success and resets the
    // backoff, so with 1013 every refused agent would come back at its shortest delay, forever.
    if (this.#clients.size >= maxConnections) {
      if (this.#refusedWhileFull === undefined) log(`push: server full (${maxConnections} connections): refusing new ones with 503 until one closes`);
      this.#refusedWhileFull = (this.#refusedWhileFull ?? 0) + 1;
      refuseUpgrade(socket, 503, `server full: ${maxConnections} connections`);
      return true;
    }
    return false;
  }

  #accept(client: WebSocket, agentId: string | undefined): void {
    this.#clients.add(client);
    if (agentId !== undefined) {
      const sockets = this.#byAgent.get(agentId) ?? new Set();
      this.#byAgent.set(agentId, sockets.add(client));
      client.on('close', () => {
        sockets.delete(client);
        if (sockets.size === 0) this.#byAgent.delete(agentId);
      });
    }
    // Protocol errors (an oversized frame...) close the connection; ws reports them here first.
    client.on('error', () => undefined);
    client.on('close', () => {
      if (this.#refusedWhileFull !== undefined && this.#clients.size < this.#options.maxConnections) {
        this.#options.log(`push: a connection closed: accepting new ones again (refused ${this.#refusedWhileFull} while full)`);
        this.#refusedWhileFull = undefined;
      }
    });
  }
}

/** To each client still open (a slice sent later may find some gone); returns how many. */
function send(clients: Iterable<WebSocket>, data: Buffer): number {
  let sent = 0;
  for (const client of clients) {
    if (client.readyState !== WebSocket.OPEN) continue;
    client.send(data, { binary: false });
    sent++;
  }
  return sent;
}

/** Fisher-Yates, in place: no agent is always among the first or the last to hear. */
function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
}

/**
 * A socket's error listener, for its whole life: a plain function, not a closure, which would keep
 * the upgrade's request (its headers) alive with the socket, a KiB or more per connection.
 */
function destroySocket(this: Duplex): void {
  this.destroy();
}
