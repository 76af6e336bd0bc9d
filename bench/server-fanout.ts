import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer } from 'ws';
import { FeedServer } from '../server/server.js';
import { type Benchmark, type Figure, median } from './measure.js';
import { type Receivers, Swarm } from './swarm.js';

/**
 * How long a publish takes to reach every connected agent, against a bare `ws` server broadcasting
 * the same message to the same number of clients. The clients run in a child process (a "swarm",
 * swarm.ts), so that the server side has a process to itself, as in production, and so that 10,000
 * sockets on each side fit in the file descriptor limit.
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
      const swarm = await Swarm.start({ urls: [`ws://127.0.0.1:${bare.port}/`], agents });
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
      const swarm = await Swarm.start({ urls: [`ws://127.0.0.1:${server.port}/ws`], agents });
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

/**
 * One warm-up, then `rounds` timed pushes: ms from just before `push` to the last agent's receipt.
 * A push that returns a promise (an announce through Redis) fails the round if it rejects.
 */
export async function timeRounds(rounds: number, swarm: Receivers, push: (text: string) => unknown): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i <= rounds; i++) {
    const received = swarm.nextAll();
    const t0 = process.hrtime.bigint();
    const [lastAt] = await Promise.all([received, push(JSON.stringify({ type: 'agent:update_required', feed_version: 1_000_000 + i }))]);
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

/** The baseline of the push benchmarks: a bare ws server on loopback, with ws's defaults (no compression). */
export async function bareServer(): Promise<{ wss: WebSocketServer; port: number; close: () => Promise<void> }> {
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

/** This process's limit of open file descriptors (`ulimit -n`); child processes inherit it. */
export function openFileLimit(): number {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return match ? Number(match[1]) : 1024;
  } catch {
    return 1024;
  }
}
