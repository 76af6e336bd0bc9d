import { type ChildProcess, fork } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { describeError } from '../app/base/errors.js';

/**
 * The client side of the server benchmarks (server-fanout.ts, fleet.ts): a child process holding
 * thousands of WebSocket connections, so that the servers have their processes to themselves and
 * each side's sockets fit in its file descriptor limit. Receipt times are taken with process.hrtime:
 * on Linux that is CLOCK_MONOTONIC, one clock for every process, so they compare with times taken in
 * the benchmark's own process.
 */
export interface SwarmOptions {
  /** Agent i connects to urls[i % urls.length]. */
  readonly urls: readonly string[];
  readonly agents: number;
  /**
   * When set, a lost agent reconnects as the product's PushClient does (app/main/core/backend/
   * push-client.ts): at a random moment within this window (full jitter), the window doubling after
   * each failed attempt; and to another of `urls`, as a balancer would send it to a live node.
   * Unset, a lost agent stays lost.
   */
  readonly reconnectWindowMs?: number;
}

/** A swarm's agents are all connected again after some were lost. */
export interface Reconnected {
  /** hrtime of the last reconnection. */
  readonly lastAt: bigint;
  /** hrtime of the latest reconnect attempt the jitter scheduled: when the last agent would be back if servers answered at once. */
  readonly latestAttemptAt: bigint;
  readonly agents: number;
  /** Attempts that failed (refused, reset, 503) and were retried with a doubled window. */
  readonly failedAttempts: number;
  /** The longest a successful attempt took, from its start to the connection open. */
  readonly slowestHandshakeMs: number;
  /** The longest the swarm's own event loop was held up meanwhile: a slow handshake may be the client's. */
  readonly maxLoopDelayMs: number;
}

/** What resolves with the hrtime at which the last agent received the next message. */
export interface Receivers {
  nextAll(): Promise<bigint>;
}

const PUSH_TIMEOUT_MS = 30_000;
/** PushClient's: a client does not wait longer than this between attempts (its window is shorter here). */
const MAX_BACKOFF_MS = 60_000;
/** PushClient's handshake timeout. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

type SwarmMessage =
  | { type: 'ready'; connectMs: number }
  | { type: 'all'; lastAt: string }
  | { type: 'reconnected'; lastAt: string; latestAttemptAt: string; agents: number; failedAttempts: number; slowestHandshakeMs: number; maxLoopDelayMs: number }
  | { type: 'failed'; error: string };

export class Swarm implements Receivers {
  readonly #child: ChildProcess;
  readonly connectMs: number;
  #onAll: ((lastAt: bigint) => void) | undefined;
  #onReconnected: ((reconnected: Reconnected) => void) | undefined;

  private constructor(child: ChildProcess, connectMs: number) {
    this.#child = child;
    this.connectMs = connectMs;
    child.on('message', (message: SwarmMessage) => {
      if (message.type === 'all') this.#onAll?.(BigInt(message.lastAt));
      if (message.type === 'reconnected') {
        const { lastAt, latestAttemptAt, ...counts } = message;
        this.#onReconnected?.({ lastAt: BigInt(lastAt), latestAttemptAt: BigInt(latestAttemptAt), ...counts });
      }
    });
  }

  static start(options: SwarmOptions): Promise<Swarm> {
    const child = fork(import.meta.filename, ['--swarm', JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      child.once('message', (message: SwarmMessage) => {
        if (message.type === 'ready') resolve(new Swarm(child, message.connectMs));
        else reject(new Error(`the client swarm failed: ${message.type === 'failed' ? message.error : message.type}`));
      });
      child.once('exit', (code) => reject(new Error(`the client swarm exited (${code}) before connecting`)));
    });
  }

  /** Resolves with the hrtime at which the last agent received the next message. */
  nextAll(): Promise<bigint> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not every agent received the push within ${PUSH_TIMEOUT_MS} ms`)), PUSH_TIMEOUT_MS);
      this.#onAll = (lastAt) => {
        clearTimeout(timer);
        resolve(lastAt);
      };
    });
  }

  /** Resolves when every agent is connected again after the next loss (only with reconnectWindowMs). */
  nextReconnected(timeoutMs: number): Promise<Reconnected> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the swarm's lost agents were not all connected again within ${timeoutMs} ms`)), timeoutMs);
      this.#onReconnected = (reconnected) => {
        clearTimeout(timer);
        resolve(reconnected);
      };
    });
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#child.exitCode !== null) return resolve();
      this.#child.once('exit', () => resolve());
      this.#child.kill('SIGTERM');
    });
  }
}

/** Several swarms as one: the next message has reached everyone when it has reached the last agent of the last swarm. */
export function allOf(swarms: readonly Receivers[]): Receivers {
  return {
    nextAll: async () => latest(await Promise.all(swarms.map((swarm) => swarm.nextAll()))),
  };
}

/** The latest of hrtimes (Math.max takes no bigint). */
export function latest(times: readonly bigint[]): bigint {
  let last = 0n;
  for (const time of times) if (time > last) last = time;
  return last;
}

/** The swarm process: `node swarm.js --swarm '<SwarmOptions as JSON>'`. */
async function runSwarm({ urls, agents, reconnectWindowMs }: SwarmOptions): Promise<void> {
  const send = (message: SwarmMessage) => process.send?.(message);
  const received = new Map<string, number>();
  const clients = new Set<WebSocket>();
  /** Since the last time every agent was connected: how many were lost, and what their reconnection looked like. */
  let storm: { lost: number; latestAttemptAt: bigint; failedAttempts: number; slowestHandshakeMs: number } | undefined;
  let stopping = false;
  // Only where there are storms to explain: a timer every 10 ms is no cost worth adding to plain rounds.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  if (reconnectWindowMs !== undefined) loopDelay.enable();

  const reconnect = (from: number, failures: number) => {
    if (reconnectWindowMs === undefined || storm === undefined) return;
    const windowMs = Math.min(MAX_BACKOFF_MS, reconnectWindowMs * 2 ** Math.min(failures, 20));
    const delayMs = Math.round(Math.random() * windowMs);
    const attemptAt = process.hrtime.bigint() + BigInt(delayMs) * 1_000_000n;
    if (attemptAt > storm.latestAttemptAt) storm.latestAttemptAt = attemptAt;
    setTimeout(() => {
      const to = (from + 1 + Math.floor(Math.random() * (urls.length - 1))) % urls.length;
      const startedAt = process.hrtime.bigint();
      openClient(urls[to] ?? '').then(
        (client) => {
          watch(client, to);
          if (storm === undefined) return;
          storm.slowestHandshakeMs = Math.max(storm.slowestHandshakeMs, Number(process.hrtime.bigint() - startedAt) / 1e6);
          if (clients.size < agents) return;
          const { latestAttemptAt, lost, failedAttempts, slowestHandshakeMs } = storm;
          const maxLoopDelayMs = loopDelay.max / 1e6;
          send({ type: 'reconnected', lastAt: String(process.hrtime.bigint()), latestAttemptAt: String(latestAttemptAt), agents: lost, failedAttempts, slowestHandshakeMs, maxLoopDelayMs });
          storm = undefined;
        },
        () => {
          if (storm) storm.failedAttempts++;
          reconnect(to, failures + 1);
        },
      );
    }, delayMs);
  };

  const watch = (client: WebSocket, urlIndex: number) => {
    clients.add(client);
    // A reset connection reports an error before its close; the close is what counts.
    client.on('error', () => undefined);
    client.on('message', (data) => {
      const text = data.toString();
      const count = (received.get(text) ?? 0) + 1;
      if (count < agents) {
        received.set(text, count);
        return;
      }
      received.delete(text);
      send({ type: 'all', lastAt: String(process.hrtime.bigint()) });
    });
    client.on('close', () => {
      clients.delete(client);
      if (stopping || reconnectWindowMs === undefined) return;
      if (storm === undefined) {
        storm = { lost: 0, latestAttemptAt: 0n, failedAttempts: 0, slowestHandshakeMs: 0 };
        loopDelay.reset();
      }
      storm.lost++;
      reconnect(urlIndex, 0);
    });
  };

  const t0 = process.hrtime.bigint();
  try {
    // In batches: thousands of simultaneous handshakes would overflow the listen backlog.
    for (let i = 0; i < agents; i += 250) {
      const batch = Array.from({ length: Math.min(250, agents - i) }, (_, j) => (i + j) % urls.length);
      const opened = await Promise.all(batch.map((index) => openClient(urls[index] ?? '')));
      for (const [j, client] of opened.entries()) watch(client, batch[j] ?? 0);
    }
  } catch (error) {
    send({ type: 'failed', error: `${clients.size} of ${agents} connected: ${describeError(error)}` });
    process.exit(1);
  }
  send({ type: 'ready', connectMs: Number(process.hrtime.bigint() - t0) / 1e6 });
  process.once('SIGTERM', () => {
    stopping = true;
    for (const client of clients) client.terminate();
    process.exit(0);
  });
}

function openClient(url: string): Promise<WebSocket> {
  const client = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
  return new Promise((resolve, reject) => {
    client.once('open', () => resolve(client));
    client.once('error', reject);
  });
}

if (process.argv[1] === import.meta.filename && process.argv[2] === '--swarm') {
  await runSwarm(JSON.parse(process.argv[3] ?? '{}') as SwarmOptions);
}
