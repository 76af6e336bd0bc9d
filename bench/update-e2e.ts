import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RUNNING_LINE } from '../app/common/cli-output.js';
import { REPO_ROOT } from '../demo/lab.js';
import { prepareUpdater, runUpdateStory, type StoryResult } from '../demo/update-story.js';
import { type Benchmark, type Figure, median, startUntil, stop } from './measure.js';

const OUTPOST = path.join(REPO_ROOT, 'bin', 'outpost.js');

/** `outpost` on a home of its own that has run before (config, secret, agent id in place, as B's): spawn to IDLE, in ms. */
async function bareStart(home: string): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, OUTPOST_HOME: home };
  delete env.OUTPOST_LOG_LEVEL;
  const agent = await startUntil(process.execPath, [OUTPOST], env, RUNNING_LINE);
  await stop(agent.child);
  return agent.ms;
}

/** The updater's single executable started and gone (`--version`), in ms. */
function updaterVersion(executable: string): number {
  const t0 = process.hrtime.bigint();
  const run = spawnSync(executable, ['--version'], { stdio: 'ignore' });
  if (run.status !== 0) throw new Error(`${executable} --version exited ${run.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const phaseMs = (result: StoryResult, name: string) => result.phases.find((p) => p.name === name)?.ms ?? Number.NaN;

/**
 * The update story of `npm run demo`, run quietly N times: from the start of the publish of B to B
 * healthy and committed, split by phase (medians). Baselines measured in the same run: a plain start
 * of the agent to IDLE (what any restart into a new version costs at least), and a start of the
 * updater executable (`--version`), against the hand-off that copies and starts it.
 */
export const updateEndToEnd: Benchmark = {
  name: 'update end to end: publish to B healthy',
  async run({ quick, log }) {
    const runs = quick ? 1 : 3;
    const lab = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-e2e-'));
    try {
      const say = { step() {}, ok: log, note: log, quote() {}, live() {} };
      const built = await prepareUpdater(path.join(lab, 'updater'), say);
      const updater = built ?? 'script';
      const bareHome = path.join(lab, 'bare-home');
      fs.mkdirSync(bareHome, { mode: 0o700 });
      await bareStart(bareHome); // its first start writes config, secret and agent id: not counted
      const results: StoryResult[] = [];
      const bare: number[] = [];
      const updaterStarts: number[] = [];
      for (let i = 0; i < runs; i++) {
        const result = await runUpdateStory({ updater });
        results.push(result);
        log(`run ${i + 1} of ${runs}: ${result.totalMs.toFixed(0)} ms publish to committed (${result.phases.map((p) => `${p.name} ${p.ms.toFixed(0)}`).join(', ')})`);
        for (let j = 0; j < 3; j++) bare.push(await bareStart(bareHome));
        if (built) for (let j = 0; j < 3; j++) updaterStarts.push(updaterVersion(built.executable));
      }

      const names = results[0]?.phases.map((p) => p.name) ?? [];
      const width = Math.max(...names.map((n) => n.length), 'total'.length);
      log(`per phase, median of ${runs} run(s) (the updater as ${built ? 'the single executable' : 'the script'}; ${((results[0]?.downloadBytes ?? 0) / 1048576).toFixed(2)} MiB downloaded of a ${((results[0]?.appBytes ?? 0) / 1048576).toFixed(1)} MiB release):`);
      for (const name of names) {
        const values = results.map((r) => phaseMs(r, name));
        log(`  ${name.padEnd(width)} ${median(values).toFixed(0).padStart(6)} ms   [${values.map((v) => v.toFixed(0)).join(', ')}]`);
      }
      const totals = results.map((r) => r.totalMs);
      log(`  ${'total'.padEnd(width)} ${median(totals).toFixed(0).padStart(6)} ms   [${totals.map((v) => v.toFixed(0)).join(', ')}]`);
      const confirmed = results.map((r) => r.confirmedMs);
      log(`  then \`outpost status\` answered B, IDLE at a median ${median(confirmed).toFixed(0)} ms from the publish; the server had B's success report at ${median(results.map((r) => r.reportedMs)).toFixed(0)} ms`);
      log(`baselines: a plain \`outpost\` start to IDLE ${median(bare).toFixed(0)} ms (median of ${bare.length}); ${built ? `\`outpost-updater --version\` ${median(updaterStarts).toFixed(0)} ms (median of ${updaterStarts.length})` : 'no updater executable on this platform'}`);

      const total = median(totals);
      const bStart = median(results.map((r) => phaseMs(r, 'launch') + phaseMs(r, 'health')));
      const handOff = median(results.map((r) => phaseMs(r, 'hand-off')));
      const bareMs = median(bare);
      const figures: Figure[] = [
        {
          name: `publish to B healthy and committed (median of ${runs})`,
          unit: 'ms',
          value: total,
          baseline: bareMs,
          baselineName: 'plain agent start to IDLE',
          goal: 'reported (ratio: plain starts an update costs)',
          met: true,
        },
        {
          name: 'B started by the updater to healthy (launch + health)',
          unit: 'ms',
          value: bStart,
          baseline: bareMs,
          baselineName: 'plain agent start to IDLE',
          goal: 'at most +100 ms (the updater looks every 50 ms)',
          met: bStart <= bareMs + 100,
        },
      ];
      if (built) {
        const updaterMs = median(updaterStarts);
        figures.push({
          name: 'hand-off (job, updater copied beside it, started, confirmed)',
          unit: 'ms',
          value: handOff,
          baseline: updaterMs,
          baselineName: 'outpost-updater --version',
          goal: 'reported',
          met: true,
        });
      }
      return figures;
    } finally {
      fs.rmSync(lab, { recursive: true, force: true });
    }
  },
};
