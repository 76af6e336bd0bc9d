/**
 * `npm run demo`: the update story of CONTRACT.md, end to end with real processes on loopback (see
 * update-story.ts): the reference server with a freshly signed feed, version A installed in a temporary
 * folder and running, version B published and taken by push, verified, handed to the updater, and B
 * back healthy. Prints the timeline as it happens and a table of the phases; exits 0 only if B is
 * running and healthy.
 */
import { StoryFailed } from './failure.js';
import type { LiveLine, StoryReporter } from './reporter.js';
import { runUpdateStory, VERSION_A, VERSION_B } from './update-story.js';

const started = Date.now();
const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number, text: string) => (useColor ? `\u001b[${code}m${text}\u001b[0m` : text);
const out = (line: string) => process.stdout.write(`${line}\n`);
// Output piped into `head` that has gone away: carry on (and clean up) without printing.
process.stdout.on('error', () => undefined);

function stamp(at = Date.now()): string {
  return paint(2, `[${((at - started) / 1000).toFixed(2).padStart(6)}s]`);
}

const WHO: Record<LiveLine['who'], string> = {
  A: paint(33, 'A      '),
  B: paint(32, 'B      '),
  updater: paint(35, 'updater'),
  server: paint(36, 'server '),
};

function bar(fraction: number, width: number): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `${'█'.repeat(filled)}${paint(2, '·'.repeat(width - filled))}`;
}

const reporter: StoryReporter = {
  step: (text, at) => out(`${stamp(at)} ${paint(1, text)}`),
  ok: (text) => out(`${stamp()} ${paint(32, 'ok')}  ${text}`),
  note: (text) => out(`${stamp()}     ${paint(2, text)}`),
  quote: (text) => {
    for (const line of text.split('\n')) out(`           ${paint(2, '│')} ${line}`);
  },
  live: (line) => {
    let text = line.text;
    if (line.kind === 'state') text = paint(1, text);
    if (line.kind === 'warn') text = paint(33, text);
    if (line.kind === 'journal') text = paint(35, text);
    if (line.progress) {
      const { bytes, total, percent } = line.progress;
      text = `downloading ${bar(percent / 100, 20)} ${String(percent).padStart(3)}%  ${(bytes / 1024).toFixed(0)} of ${(total / 1024).toFixed(0)} KiB`;
    }
    out(`${stamp(line.at)}   ${WHO[line.who]} ${text}`);
  },
};

async function main(): Promise<number> {
  out(`${paint(1, 'Outpost demo')}: a signed update from ${VERSION_A} to ${VERSION_B}, taken by push, handed to the standalone updater, health-checked and committed (all on loopback)\n`);
  try {
    const result = await runUpdateStory({ reporter });
    const total = result.totalMs;
    out('');
    out(paint(1, `From the publish of ${VERSION_B} to ${VERSION_B} healthy and committed: ${(total / 1000).toFixed(2)} s`));
    const nameWidth = Math.max(...result.phases.map((p) => p.name.length));
    out(paint(2, `  ${'phase'.padEnd(nameWidth)}  ${'ms'.padStart(6)}  ${'share'.padEnd(24)}  what`));
    for (const phase of result.phases) {
      out(`  ${phase.name.padEnd(nameWidth)}  ${String(Math.round(phase.ms)).padStart(6)}  ${bar(phase.ms / total, 24)}  ${paint(2, phase.what)}`);
    }
    out(`  ${'total'.padEnd(nameWidth)}  ${String(Math.round(total)).padStart(6)}`);
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    out(`  then, seen from outside: \`outpost status\` answered ${VERSION_B}, IDLE at ${s(result.confirmedMs)}; the server stored B's success report at ${s(result.reportedMs)}`);
    out(paint(2, `  (the updater ran as ${result.updater === 'executable' ? 'the single executable' : 'the script bin/outpost-updater.js'}; ${(result.downloadBytes / 1024).toFixed(0)} KiB downloaded of a ${(result.appBytes / 1048576).toFixed(1)} MiB release)`));
    out(`\n${paint(32, 'Demo passed')} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${VERSION_B} is running and healthy (and was stopped at the end); the temporary folder is removed.`);
    return 0;
  } catch (error) {
    const where = error instanceof StoryFailed ? `\nEverything is kept for a look in ${error.workDir} (logs: home/logs/outpost.log, journal: home/updates/).` : '';
    out(`\n${paint(31, 'Demo FAILED')}: ${error instanceof Error ? error.message : String(error)}${where}`);
    return 1;
  }
}

process.exitCode = await main();
