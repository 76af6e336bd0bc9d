import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { RUNNING_LINE } from '../app/common/cli-output.js';
import { DEFAULT_CONFIG } from '../app/main/core/config-schema.js';
import { FaultProxy } from '../test/helpers/fault-proxy.js';
import { release, startFeedServer } from './feed-lab.js';
import { type Benchmark, cpuMs, type Figure, rssMb, startUntil, stop } from './measure.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'outpost.js');
const BARE = ['-e', 'process.stderr.write("ready\\n"); setInterval(() => {}, 1 << 30)'];


/** An application of `files` files: half compressible text, half random bytes, ~`bytes` in all. */
function writeApp(dir: string, version: string, files: number, bytes: number): void {
  fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'bench-app', version }));
  const each = Math.floor(bytes / files);
  for (let i = 0; i < files; i++) {
    const content = i % 2 ? randomBytes(each) : Buffer.from(`// module ${i}\n${'export const value = "some text";\n'.repeat(each / 34)}`);
    fs.writeFileSync(path.join(dir, 'lib', `m${i}.js`), content);
  }
}

async function waitForLog(file: string, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (fs.existsSync(file) && pattern.test(fs.readFileSync(file, 'utf8'))) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${pattern} in ${file}`);
}

/**
 * The update pipeline's figures: bytes for a one-file release, publish to staged, and the agent idle
 * with its WebSocket open (download and verification: bench/chunked-updates.ts).
 */
export const updatePipeline: Benchmark = {
  name: 'update pipeline',
  async run({ quick, log }) {
    const lab = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-update-'));
    const children: ChildProcess[] = [];
    let proxy: FaultProxy | undefined;
    try {
      const keys = path.join(lab, 'keys');
      const feed = path.join(lab, 'feed');
      release(['keygen', '--out', keys]);
      const v1 = path.join(lab, 'v1');
      writeApp(v1, '1.0.0', 100, quick ? 4 * 1024 * 1024 : 16 * 1024 * 1024);
      const fullCompressed = Number(/(\d+) new bytes stored/.exec(release(['publish', '--app', v1, '--version', '1.0.0', '--key', keys, '--feed', feed]).stdout)?.[1]);

      const server = await startFeedServer(feed, path.join(lab, 'reports.jsonl'));
      children.push(server.child);
      const serverUrl = server.url;
      proxy = await FaultProxy.start(serverUrl);

      const home = path.join(lab, 'home');
      fs.mkdirSync(home, { mode: 0o700 });
      const config = {
        ...DEFAULT_CONFIG,
        backend: { url: proxy.url, ws_url: `${serverUrl.replace('http', 'ws')}/ws` },
        // Staged is where this benchmark stops: no hand-off, so no updater or new version outlives it.
        update: { ...DEFAULT_CONFIG.update, hand_off: false, trust_file: path.join(keys, 'root.json') },
      };
      fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify(config));
      const install = path.join(lab, 'install');
      fs.cpSync(v1, install, { recursive: true });
      const env = { ...process.env, OUTPOST_HOME: home, OUTPOST_INSTALL_DIR: install };
      const agent = await startUntil(process.execPath, [BIN], env, RUNNING_LINE);
      children.push(agent.child);
      const agentLog = path.join(home, 'logs', 'outpost.log');
      await waitForLog(agentLog, /no update: 1\.0\.0 is the version/, 30_000);

      // Agent idle with the WebSocket open, against a bare Node process.
      const bare = await startUntil(process.execPath, BARE, process.env, /ready/);
      children.push(bare.child);
      await sleep(1_000);
      const windowS = quick ? 5 : 30;
      const rss = { agent: rssMb(agent.child.pid as number), bare: rssMb(bare.child.pid as number) };
      const cpu0 = { agent: cpuMs(agent.child.pid as number), bare: cpuMs(bare.child.pid as number) };
      log(`idle with the WebSocket open: watching for ${windowS} s...`);
      await sleep(windowS * 1000);
      const cpu = { agent: cpuMs(agent.child.pid as number) - cpu0.agent, bare: cpuMs(bare.child.pid as number) - cpu0.bare };

      // One file of 100 KiB changes (random bytes: the compressed blob is as big as the file).
      const v2 = path.join(lab, 'v2');
      fs.cpSync(v1, v2, { recursive: true });
      fs.writeFileSync(path.join(v2, 'package.json'), JSON.stringify({ name: 'bench-app', version: '1.1.0' }));
      fs.writeFileSync(path.join(v2, 'lib', 'm1.js'), randomBytes(100 * 1024));
      const before = proxy.bytesServed;
      const t0 = process.hrtime.bigint();
      const published = release(['publish', '--app', v2, '--version', '1.1.0', '--key', keys, '--feed', feed]).stdout;
      await waitForLog(agentLog, /1\.1\.0 staged complete/, 60_000);
      const publishToStagedMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const transferred = proxy.bytesServed - before;
      const changedCompressed = Number(/(\d+) new bytes stored/.exec(published)?.[1]);
      log(`one-file release: ${transferred} bytes over the wire; new objects stored ${changedCompressed} bytes; whole app stored ${fullCompressed} bytes`);

      const bytesGoal = 1.05 * changedCompressed + 16 * 1024;
      return [
        {
          name: 'one-file release: bytes transferred',
          unit: 'KiB',
          value: transferred / 1024,
          baseline: changedCompressed / 1024,
          baselineName: 'new objects, compressed',
          goal: `at most 1.05x + 16 KiB (${(bytesGoal / 1024).toFixed(0)} KiB); the whole app is ${(fullCompressed / 1024).toFixed(0)} KiB`,
          met: transferred <= bytesGoal,
        },
        { name: 'publish to staged (one file)', unit: 'ms', value: publishToStagedMs, baseline: 0, baselineName: 'none', goal: 'reported', met: true },
        { name: 'idle RSS, WebSocket open', unit: 'MB', value: rss.agent, baseline: rss.bare, baselineName: 'idle bare node', goal: 'reported (ratio)', met: true },
        { name: `CPU over ${windowS} idle s, WebSocket open`, unit: 'ms', value: cpu.agent, baseline: cpu.bare, baselineName: 'idle bare node', goal: 'close to zero', met: cpu.agent <= windowS },
      ] satisfies Figure[];
    } finally {
      await Promise.all(children.map((child) => stop(child)));
      await proxy?.close();
      fs.rmSync(lab, { recursive: true, force: true });
    }
  },
};
