import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as turnOfTheLoop } from 'node:timers/promises';
import type { Logger } from '../app/base/logger.js';
import { createPlatform } from '../app/main/platform/index.js';
import { type MoveContext, moveDir } from '../updater/moves.js';
import { type Benchmark, type Figure, median } from './measure.js';

const MB = 1024 * 1024;
const KB = 1024;
/** Two trees, plus a third while the copy swap's backup copy exists, plus room to spare. */
const NEEDED_FREE = 1.5 * 1024 * MB;

/** The 55 locale packs of a Chromium-based application. */
const LOCALES = [
  'af', 'am', 'ar', 'bg', 'bn', 'ca', 'cs', 'da', 'de', 'el', 'en-GB', 'en-US', 'es-419', 'es', 'et', 'fa', 'fi', 'fil', 'fr',
  'gu', 'he', 'hi', 'hr', 'hu', 'id', 'it', 'ja', 'kn', 'ko', 'lt', 'lv', 'ml', 'mr', 'ms', 'nb', 'nl', 'pl', 'pt-BR', 'pt-PT',
  'ro', 'ru', 'sk', 'sl', 'sr', 'sv', 'sw', 'ta', 'te', 'th', 'tr', 'uk', 'ur', 'vi', 'zh-CN', 'zh-TW',
];

/** A small deterministic generator, so that both trees (and every run) have the same shape. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * The files of an application shaped like an Electron build for Linux: one ~180 MB main binary, the
 * .pak files, ICU data, the GL and codec libraries, ~20 MB of locale packs, and an app of ~920 small
 * files in nested folders under resources/. About 250 MB in about 1,000 files.
 */
function electronLayout(): Array<{ file: string; size: number }> {
  const random = seeded(0x0e1ec7);
  const files: Array<{ file: string; size: number }> = [
    { file: 'outpost', size: 180 * MB },
    { file: 'chrome-sandbox', size: 50 * KB },
    { file: 'chrome_crashpad_handler', size: 1.5 * MB },
    { file: 'chrome_100_percent.pak', size: 160 * KB },
    { file: 'chrome_200_percent.pak', size: 230 * KB },
    { file: 'resources.pak', size: 10 * MB },
    { file: 'icudtl.dat', size: 10 * MB },
    { file: 'libEGL.so', size: 450 * KB },
    { file: 'libGLESv2.so', size: 7 * MB },
    { file: 'libffmpeg.so', size: 3 * MB },
    { file: 'libvk_swiftshader.so', size: 5 * MB },
    { file: 'vk_swiftshader_icd.json', size: 106 },
    { file: 'snapshot_blob.bin', size: 300 * KB },
    { file: 'v8_context_snapshot.bin', size: 650 * KB },
    { file: 'LICENSE', size: 1 * KB },
    { file: 'LICENSES.chromium.html', size: 9 * MB },
  ];
  // Locale packs of uneven sizes, ~20 MB in all.
  const weights = LOCALES.map(() => 0.6 + 0.8 * random());
  const total = weights.reduce((a, b) => a + b, 0);
  LOCALES.forEach((locale, i) => {
    files.push({ file: path.join('locales', `${locale}.pak`), size: Math.round((20 * MB * (weights[i] as number)) / total) });
  });
  // The application itself: mostly small files, a few of tens of KB.
  const small = () => Math.round(300 + random() ** 3 * 40 * KB);
  const app = path.join('resources', 'app');
  files.push({ file: path.join(app, 'package.json'), size: 600 });
  for (const [part, count] of [['main', 40], ['renderer', 120], ['preload', 10]] as const) {
    for (let i = 0; i < count; i++) files.push({ file: path.join(app, 'dist', part, `chunk-${i}.js`), size: small() });
  }
  for (let i = 0; i < 40; i++) files.push({ file: path.join(app, 'dist', 'renderer', 'assets', `asset-${i}.css`), size: small() });
  for (let i = 0; i < 20; i++) files.push({ file: path.join(app, 'assets', 'icons', `icon-${i}.png`), size: small() });
  for (let p = 0; p < 30; p++) {
    const pkg = path.join(app, 'node_modules', p % 5 === 0 ? `@scope-${p}/pkg-${p}` : `pkg-${p}`);
    files.push({ file: path.join(pkg, 'package.json'), size: 900 }, { file: path.join(pkg, 'README.md'), size: small() }, { file: path.join(pkg, 'index.js'), size: small() });
    for (let i = 0; i < 12; i++) files.push({ file: path.join(pkg, 'lib', `module-${i}.js`), size: small() });
    for (let i = 0; i < 8; i++) files.push({ file: path.join(pkg, 'lib', 'internal', `helper-${i}.js`), size: small() });
  }
  return files;
}

/**
 * Writes the tree under `root`: every 1 MB of every file is the same random block, from a different
 * offset for small files and under a header naming the version, file and offset (not all zeros, not
 * compressible, not identical between files, and quick to write).
 */
function writeTree(root: string, version: string, layout: ReadonlyArray<{ file: string; size: number }>, block: Buffer): void {
  for (const { file, size } of layout) {
    const target = path.join(root, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const fd = fs.openSync(target, 'w');
    try {
      for (let offset = 0; offset < size; offset += MB) {
        const length = Math.min(MB, size - offset);
        const start = length < MB ? (offset + file.length * 7919) % (MB - length) : 0;
        block.write(`${version} ${file} @${offset}\n`, start, 'latin1');
        fs.writeSync(fd, block, start, length);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  fs.writeFileSync(path.join(root, 'version'), version);
}

/** The file system holding `dir`, from /proc/self/mounts (Linux), else the statfs type number. */
function describeFileSystem(dir: string): string {
  const real = fs.realpathSync(dir);
  let best: { mount: string; type: string; source: string } | undefined;
  try {
    for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [source, escaped, type] = line.split(' ');
      if (!source || !escaped || !type) continue;
      const mount = escaped.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
      const inside = mount === '/' || real === mount || real.startsWith(`${mount}/`);
      if (inside && (!best || mount.length >= best.mount.length)) best = { mount, type, source };
    }
  } catch {
    // not Linux: the statfs type below is all there is
  }
  const magic = `statfs type 0x${fs.statfsSync(dir).type.toString(16)}`;
  return best ? `${best.type} (${best.source} on ${best.mount}; ${magic})` : magic;
}

/** Writes the file system's dirty pages out, outside the timed window, so that every run starts alike. */
function flush(dir: string): void {
  if (process.platform !== 'win32') spawnSync('sync', ['-f', dir], { stdio: 'ignore' });
}

function elapsedMs(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** The updater's copy fallback (EXDEV), as a copy-based updater does every move. No fsync, as in moveDir. */
function copyMove(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true, errorOnExist: true, force: false, verbatimSymlinks: true });
  fs.rmSync(from, { recursive: true, force: true });
}

/**
 * The updater's swap of an Electron-sized application (backup: install -> backup, then swap: staged
 * -> install) with the real `moveDir` (two renames), against the same two moves done by copying and
 * removing. Warm page cache (nothing is dropped), and no fsync on either side.
 */
export const swap: Benchmark = {
  name: 'updater swap: rename vs copy',
  async run({ quick, log }) {
    const free = fs.statfsSync(os.tmpdir());
    const freeBytes = free.bavail * free.bsize;
    if (freeBytes < NEEDED_FREE) {
      log(`SKIPPED: ${(freeBytes / 1024 / MB).toFixed(2)} GB free under ${os.tmpdir()}, the swap benchmark needs ${(NEEDED_FREE / 1024 / MB).toFixed(1)} GB`);
      return [];
    }
    const lab = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-swap-'));
    // A 500 MB folder must not outlive an interrupted run. Signals are handled on a turn of the event
    // loop, which the work below (synchronous, or awaiting settled promises) gives only where it says so.
    const onSignal = (signal: NodeJS.Signals) => {
      fs.rmSync(lab, { recursive: true, force: true });
      process.kill(process.pid, signal);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const install = path.join(lab, 'install');
      const staged = path.join(lab, 'staged');
      const backup = path.join(lab, 'backup');
      log(`trees in ${lab}: ${describeFileSystem(lab)}, ${(freeBytes / 1024 / MB).toFixed(1)} GB free`);

      const layout = electronLayout();
      const block = randomBytes(MB);
      let t0 = process.hrtime.bigint();
      writeTree(install, 'A', layout, block);
      writeTree(staged, 'B', layout, block);
      const files = layout.length + 1;
      const bytes = layout.reduce((n, f) => n + f.size, 0) + 1;
      const dirs = new Set(layout.flatMap((f) => path.dirname(f.file).split(path.sep).map((_, i, parts) => parts.slice(0, i + 1).join(path.sep)))).size - 1;
      log(`two trees of ${(bytes / MB).toFixed(1)} MB in ${files} files and ${dirs} folders each (main binary 180 MB); written in ${elapsedMs(t0).toFixed(0)} ms (not measured)`);

      const silent: Logger = { error: log, warn: log, info: () => undefined, debug: () => undefined, child: () => silent };
      const context: MoveContext = { platform: createPlatform(), log: silent, heldFileRetryMs: 0 };

      const check = (how: string) => {
        if (fs.readFileSync(path.join(install, 'version'), 'utf8') !== 'B' || fs.readFileSync(path.join(backup, 'version'), 'utf8') !== 'A' || fs.existsSync(staged)) {
          throw new Error(`the ${how} swap did not leave B installed and A in the backup`);
        }
      };
      // Back to the start (install = A, staged = B, no backup), by renames, outside the timed window.
      const reset = () => {
        fs.renameSync(install, staged);
        fs.renameSync(backup, install);
        flush(lab);
      };

      const renameMs: number[] = [];
      const copyMs: number[] = [];
      const rounds = quick ? 3 : 7;
      flush(lab);
      for (let round = 0; round < rounds; round++) {
        const byRename = async () => {
          const inodes = { install: fs.statSync(install).ino, staged: fs.statSync(staged).ino };
          t0 = process.hrtime.bigint();
          await moveDir(context, install, backup);
          await moveDir(context, staged, install);
          renameMs.push(elapsedMs(t0));
          check('rename');
          // Same folders, new names: moveDir renamed them rather than falling back to its copy.
          if (fs.statSync(backup).ino !== inodes.install || fs.statSync(install).ino !== inodes.staged) throw new Error('moveDir copied instead of renaming');
          reset();
        };
        const byCopy = async () => {
          t0 = process.hrtime.bigint();
          copyMove(install, backup);
          copyMove(staged, install);
          copyMs.push(elapsedMs(t0));
          check('copy');
          reset(); // the copies become the trees of the next round
        };
        // Alternate which goes first, so neither always follows the other's writes.
        for (const run of round % 2 ? [byCopy, byRename] : [byRename, byCopy]) {
          await turnOfTheLoop(); // a pending SIGINT or SIGTERM is handled here, outside the timed window
          await run();
        }
      }

      const rename = median(renameMs);
      const copy = median(copyMs);
      const ratio = rename / copy;
      const fmt = (xs: number[], digits: number) => xs.map((x) => x.toFixed(digits)).join(', ');
      log(`copy swap (cpSync + rmSync, twice): median ${copy.toFixed(1)} ms over ${rounds} runs [${fmt(copyMs, 0)}]; ${((2 * bytes) / MB / (copy / 1000)).toFixed(0)} MB/s (2 x ${(bytes / MB).toFixed(1)} MB copied and removed)`);
      log(`rename swap (moveDir, twice): median ${(rename * 1000).toFixed(0)} us over ${rounds} runs [${fmt(renameMs, 3)} ms]; ${ratio.toPrecision(2)}x the copy`);
      log('warm page cache (nothing dropped; the trees are flushed with sync before each run, outside the timed window); neither swap fsyncs');

      return [
        {
          name: `swap by rename (Electron-sized app, ${(bytes / MB).toFixed(0)} MB in ${files} files)`,
          unit: 'ms',
          value: rename,
          baseline: copy,
          baselineName: 'copy swap: cpSync + rmSync',
          goal: '<= 0.05x the copy',
          met: ratio <= 0.05,
        },
      ] satisfies Figure[];
    } finally {
      fs.rmSync(lab, { recursive: true, force: true });
      await turnOfTheLoop(); // a signal that came during the last run still stops the process
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
  },
};
