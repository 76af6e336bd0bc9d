/**
 * `npm run bench`: speed and memory goals, printed as figures and ratios against a baseline measured
 * in the same run. Never asserted in tests (timings on a shared 2-core machine are not pass/fail).
 * `npm run bench -- --quick` shortens every window.
 */
import { agentIdle } from './agent-idle.js';
import { ipc } from './ipc.js';
import { serverFanout } from './server-fanout.js';
import { swap } from './swap.js';
import { updateEndToEnd } from './update-e2e.js';
import { updatePipeline } from './update.js';
import type { Benchmark, Figure } from './measure.js';

const BENCHMARKS: readonly Benchmark[] = [agentIdle, ipc, updatePipeline, updateEndToEnd, swap, serverFanout];

function row(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
}

async function main(): Promise<number> {
  const quick = process.argv.includes('--quick');
  const all: Figure[] = [];
  for (const bench of BENCHMARKS) {
    process.stdout.write(`== ${bench.name}\n`);
    all.push(...(await bench.run({ quick, log: (line) => process.stdout.write(`   ${line}\n`) })));
  }
  const header = ['figure', 'value', 'baseline', 'difference', 'ratio', 'goal', 'met'];
  const rows = all.map((f) => [
    f.name,
    `${f.value.toFixed(1)} ${f.unit}`,
    `${f.baseline.toFixed(1)} ${f.unit} (${f.baselineName})`,
    `${f.value - f.baseline >= 0 ? '+' : ''}${(f.value - f.baseline).toFixed(1)} ${f.unit}`,
    f.baseline > 0 ? `${(f.value / f.baseline).toFixed(2)}x` : 'n/a',
    f.goal,
    f.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  process.stdout.write(`\n${row(header, widths)}\n${row(widths.map((w) => '-'.repeat(w)), widths)}\n`);
  for (const r of rows) process.stdout.write(`${row(r, widths)}\n`);
  return 0;
}

process.exitCode = await main();
