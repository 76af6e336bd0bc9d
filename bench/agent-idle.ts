import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { RUNNING_LINE } from '../app/common/cli-output.js';
import { type Benchmark, cpuMs, type Figure, median, rssMb, startUntil, stop } from './measure.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'outpost.js');
const BARE = ['-e', 'process.stderr.write("ready\\n"); setInterval(() => {}, 1 << 30)'];

/** Start-up time, idle memory and idle CPU of the agent against a bare Node process of the same Node. */
export const agentIdle: Benchmark = {
  name: 'agent start and idle',
  async run({ quick, log }) {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-'));
    const env = { ...process.env, OUTPOST_HOME: home };
    const rounds = quick ? 5 : 15;
    const bareMs: number[] = [];
    const agentMs: number[] = [];
    try {
      // Warm the file cache first, then alternate so that drift hits both alike.
      await stop((await startUntil(process.execPath, [BIN], env, RUNNING_LINE)).child);
      for (let i = 0; i < rounds; i++) {
        const bare = await startUntil(process.execPath, BARE, env, /ready/);
        bareMs.push(bare.ms);
        await stop(bare.child);
        const agent = await startUntil(process.execPath, [BIN], env, RUNNING_LINE);
        agentMs.push(agent.ms);
        await stop(agent.child);
      }
      log(`start: ${rounds} rounds each; bare node median ${median(bareMs).toFixed(1)} ms, agent median ${median(agentMs).toFixed(1)} ms`);

      const windowS = quick ? 10 : 60;
      const bare = (await startUntil(process.execPath, BARE, env, /ready/)).child;
      const agent = (await startUntil(process.execPath, [BIN], env, RUNNING_LINE)).child;
      await sleep(2_000);
      const rss = { bare: rssMb(bare.pid as number), agent: rssMb(agent.pid as number) };
      const cpu0 = { bare: cpuMs(bare.pid as number), agent: cpuMs(agent.pid as number) };
      log(`idle: watching both processes for ${windowS} s...`);
      await sleep(windowS * 1_000);
      const cpu = { bare: cpuMs(bare.pid as number) - cpu0.bare, agent: cpuMs(agent.pid as number) - cpu0.agent };
      await Promise.all([stop(bare), stop(agent)]);

      const startDelta = median(agentMs) - median(bareMs);
      const figures: Figure[] = [
        {
          name: 'start to IDLE',
          unit: 'ms',
          value: median(agentMs),
          baseline: median(bareMs),
          baselineName: 'bare node start',
          goal: 'at most +150 ms',
          met: startDelta <= 150,
        },
        { name: 'idle RSS', unit: 'MB', value: rss.agent, baseline: rss.bare, baselineName: 'idle bare node', goal: 'at most +30 MB', met: rss.agent - rss.bare <= 30 },
        {
          name: `CPU over ${windowS} idle s`,
          unit: 'ms',
          value: cpu.agent,
          baseline: cpu.bare,
          baselineName: 'idle bare node',
          goal: 'close to zero (<= 0.1% of the window)',
          met: cpu.agent <= windowS * 1_000 * 0.001,
        },
      ];
      return figures;
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  },
};
