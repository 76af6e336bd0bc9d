import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { FeedServer } from '../server/server.js';
import { type Benchmark, type Figure, median } from './measure.js';

/**
 * How long a publish takes to reach every connected agent, against a bare `ws` server broadcasting
 * the same message to the same number of clients. The clients run in a child process (a "swarm"),
 * so that the server side has a process to itself, as in production, and so that 10,000 sockets on
 * each side fit in the file descriptor limit. Receipt times are taken with process.hrtime in the
 * swarm: on Linux that is CLOCK_MONOTONIC, one clock for every process, so they compare with the
 * publish time taken here.
 */
export const serverFanout: Benchmark = {
  name: 'server: push fan-out',
  async run({ quick, log }) {
    const rounds = quick ? 7 : 21;
    const limit = openFileLimit();
    const figures: Figure[] = [];
    for (const wanted of [1_000, 10_000]) {
      // Each side holds one descriptor per client, plus a margin for everything else.
      const agents = Math.min(wanted, limit - 256);
      if (agents < wanted) log(`only ${agents} agents instead of ${wanted}: the open file limit (ulimit -n) is ${limit}`);
      figures.push(...(await measure(agents, rounds, log)));
    }
    return figures;
  },
};

async function measure(agents: number, rounds: number, log: (line: string) => void): Promise<Figure[]> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-fanout-'));
  const feedDir = path.join(root, 'feed');
  let version = 1;
  writeTimestamp(feedDir, version);
  try {
    // The baseline: a bare ws server, the message serialized once, sent as a string to each client.
    const bare = await bareServer();
    let baseline: number[];
    try {
      const swarm = await Swarm.start(`ws://127.0.0.1:${bare.port}/`, agents);
      try {
        log(`${agents} agents: bare ws server, ${swarm.connectMs.toFixed(0)} ms to connect them`);
        baseline = await timeRounds(rounds, swarm, (text) => {
          for (const client of bare.wss.clients) client.send(text);
        });
      } finally {
        await swarm.stop();
      }
    } finally {
      await bare.close();
    }

    // When the server has handed the push to every socket (its log line follows the broadcast):
    // separates the server's share from the time the clients take to read it.
    const sentAt: bigint[] = [];
    const serverLog = (line: string) => {
      if (/^feed version \d+ published/.test(line)) sentAt.push(process.hrtime.bigint());
    };
    const server = await FeedServer.start({ feedDir, reportsFile: path.join(root, 'reports.jsonl'), host: '127.0.0.1', port: 0, log: serverLog });
    const serverSide: number[] = [];
    let published: number[];
    let broadcastOnly: number[];
    try {
      const swarm = await Swarm.start(`ws://127.0.0.1:${server.port}/ws`, agents);
      try {
        log(`${agents} agents: FeedServer, ${swarm.connectMs.toFixed(0)} ms to connect them`);
        const renamedAt: bigint[] = [];
        published = await timeRounds(rounds, swarm, () => {
          renamedAt.push(process.hrtime.bigint());
          writeTimestamp(feedDir, ++version);
        });
        // The first round is the warm-up.
        for (let i = 1; i < renamedAt.length; i++) serverSide.push(Number((sentAt[i] ?? 0n) - (renamedAt[i] ?? 0n)) / 1e6);
        broadcastOnly = await timeRounds(rounds, swarm, () => server.broadcastUpdateRequired(++version));
      } finally {
        await swarm.stop();
      }
    } finally {
      await server.close();
    }
    const [p, b, base] = [median(published), median(broadcastOnly), median(baseline)];
    log(
      `${agents} agents, median of ${rounds}: publish to all notified ${p.toFixed(1)} ms (of which rename to the last send written, in the server: ` +
        `${median(serverSide).toFixed(1)} ms), broadcast only ${b.toFixed(1)} ms, bare ws broadcast ${base.toFixed(1)} ms`,
    );
    return [figure(`publish to all notified (${agents} agents)`, p, base), figure(`broadcast only (${agents} agents)`, b, base)];
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function figure(name: string, value: number, baseline: number): Figure {
  return { name, unit: 'ms', value, baseline, baselineName: 'bare ws broadcast', goal: 'at most 1.25x a bare ws broadcast', met: value <= 1.25 * baseline };
}

/** One warm-up, then `rounds` timed pushes: ms from just before `push` to the last agent's receipt. */
async function timeRounds(rounds: number, swarm: Swarm, push: (text: string) => void): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i <= rounds; i++) {
    const received = swarm.nextAll();
    const t0 = process.hrtime.bigint();
    push(JSON.stringify({ type: 'agent:update_required', feed_version: 1_000_000 + i }));
    const lastAt = await received;
    if (i > 0) times.push(Number(lastAt - t0) / 1e6);
    await sleep(50);
  }
  return times;
}

/** What the release tool does last: timestamp.json replaced atomically. */
function writeTimestamp(feedDir: string, version: number): void {
  const metadata = path.join(feedDir, 'metadata');
  fs.mkdirSync(metadata, { recursive: true });
  const temp = path.join(metadata, '.timestamp.json.tmp');
  fs.writeFileSync(temp, JSON.stringify({ signed: { _type: 'timestamp', version, expires: '2030-01-01T00:00:00Z', meta: {} }, signatures: [] }));
  fs.renameSync(temp, path.join(metadata, 'timestamp.json'));
}

async function bareServer(): Promise<{ wss: WebSocketServer; port: number; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  const address = wss.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const close = () =>
    new Promise<void>((resolve) => {
      for (const client of wss.clients) client.terminate();
      wss.close(() => resolve());
    });
  return { wss, port, close };
}

function openFileLimit(): number {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return match ? Number(match[1]) : 1024;
  } catch {
    return 1024;
  }
}

const PUSH_TIMEOUT_MS = 30_000;

type SwarmMessage = { type: 'ready'; connectMs: number } | { type: 'all'; lastAt: string } | { type: 'failed'; error: string };

/** The client side: a child process holding `agents` WebSocket connections, reporting when all got a message. */
class Swarm {
  readonly #child: ChildProcess;
  readonly connectMs: number;
  #onAll: ((lastAt: bigint) => void) | undefined;

  private constructor(child: ChildProcess, connectMs: number) {
    this.#child = child;
    this.connectMs = connectMs;
    child.on('message', (message: SwarmMessage) => {
      if (message.type === 'all') this.#onAll?.(BigInt(message.lastAt));
    });
  }

  static start(url: string, agents: number): Promise<Swarm> {
    const child = fork(import.meta.filename, ['--swarm', url, String(agents)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#child.exitCode !== null) return resolve();
      this.#child.once('exit', () => resolve());
      this.#child.kill('SIGTERM');
    });
  }
}

/** The swarm process: `node server-fanout.js --swarm URL N`. */
async function runSwarm(url: string, agents: number): Promise<void> {
  const send = (message: SwarmMessage) => process.send?.(message);
  const received = new Map<string, number>();
  const t0 = process.hrtime.bigint();
  const clients: WebSocket[] = [];
  try {
    // In batches: thousands of simultaneous handshakes would overflow the listen backlog.
    for (let i = 0; i < agents; i += 250) {
      const batch = Array.from({ length: Math.min(250, agents - i) }, () => openClient(url));
      clients.push(...(await Promise.all(batch)));
    }
  } catch (error) {
    send({ type: 'failed', error: `${clients.length} of ${agents} connected: ${error instanceof Error ? error.message : String(error)}` });
    process.exit(1);
  }
  for (const client of clients) {
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
  }
  send({ type: 'ready', connectMs: Number(process.hrtime.bigint() - t0) / 1e6 });
  process.once('SIGTERM', () => {
    for (const client of clients) client.terminate();
    process.exit(0);
  });
}

function openClient(url: string): Promise<WebSocket> {
  const client = new WebSocket(url, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    client.once('open', () => resolve(client));
    client.once('error', reject);
  });
}

if (process.argv[1] === import.meta.filename && process.argv[2] === '--swarm') {
  await runSwarm(process.argv[3] ?? '', Number(process.argv[4]));
}
