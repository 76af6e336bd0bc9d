import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUNNING_LINE } from '../app/common/cli-output.js';
import { AgentClient } from '../app/main/core/agent-client.js';
import { createPlatform } from '../app/main/platform/index.js';
import { type Benchmark, type Figure, median, startUntil, stop } from './measure.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'outpost.js');

/** Wall time of one process run to its exit, in ms. */
function timeRun(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, args, { env, stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`${args.join(' ')} exited ${code}`))));
  });
}

async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function connectAndClose(endpoint: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(endpoint, () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

/**
 * The IPC figures of the IPC issue: `outpost status` (the whole command, and its authenticated
 * round trip alone), and how long `outpost --force` takes to have the new instance running.
 */
export const ipc: Benchmark = {
  name: 'IPC: status and --force',
  async run({ quick, log }) {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-'));
    const env = { ...process.env, OUTPOST_HOME: home };
    const rounds = quick ? 5 : 20;
    try {
      let agent = (await startUntil(process.execPath, [BIN], env, RUNNING_LINE)).child;
      const client = new AgentClient(createPlatform(), env);

      const bareRun: number[] = [];
      const statusRun: number[] = [];
      const connect: number[] = [];
      const roundTrip: number[] = [];
      for (let i = 0; i < rounds; i++) {
        bareRun.push(await timeRun(['-e', '0'], env));
        statusRun.push(await timeRun([BIN, 'status'], env));
        connect.push(await timeAsync(() => connectAndClose(client.address.endpoint)));
        roundTrip.push(await timeAsync(() => client.send('status', 5_000)));
      }
      log(`status: ${rounds} rounds; command median ${median(statusRun).toFixed(1)} ms, round trip median ${median(roundTrip).toFixed(2)} ms`);

      // --force against a plain start of the same agent (nobody to ask, nobody to wait for).
      const plain: number[] = [];
      const forced: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const next = await startUntil(process.execPath, [BIN, '--force'], env, RUNNING_LINE);
        forced.push(next.ms);
        agent = next.child;
        await stop(agent);
        const fresh = await startUntil(process.execPath, [BIN], env, RUNNING_LINE);
        plain.push(fresh.ms);
        agent = fresh.child;
      }
      await stop(agent);
      log(`--force: ${rounds} rounds; to the new instance running median ${median(forced).toFixed(1)} ms`);

      return [
        figure('outpost status (command)', median(statusRun), median(bareRun), 'bare node run', 'at most +150 ms', 150),
        figure('status round trip', median(roundTrip), median(connect), 'connect and close', 'at most +10 ms', 10),
        figure('--force to new instance running', median(forced), median(plain), 'plain start', 'at most +300 ms', 300),
      ];
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  },
};

function figure(name: string, value: number, baseline: number, baselineName: string, goal: string, maxDelta: number): Figure {
  return { name, unit: 'ms', value, baseline, baselineName, goal, met: value - baseline <= maxDelta };
}
