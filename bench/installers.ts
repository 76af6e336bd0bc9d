/**
 * The installers (issue 12): the sizes of the NSIS and Inno Setup installers against the installed
 * size, the updater executable's share of it, and a silent install and uninstall of each under Wine
 * against copying and deleting the same files. The package is the real `npm run dist` packaging around
 * the STAND-IN Electron (a Node single executable where Electron's would be: about the same size).
 * The full run compresses as a release does (LZMA, solid: minutes); the quick run stores the files,
 * so its sizes say nothing of compression.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findOnPath } from '../tools/build/commands.js';
import { buildInnoInstaller, innoWineProblem } from '../tools/dist/inno.js';
import { buildNsisInstaller } from '../tools/dist/nsis.js';
import { buildTestPackage } from '../test/helpers/package-lab.js';
import { prepareWine, stopWine, toWindowsPath } from '../test/wine/harness.js';
import { InnoLab, NsisLab, treeSize } from '../test/wine/installer-lab.js';
import type { Benchmark, Figure } from './measure.js';

const MIB = 1024 * 1024;

export const installers: Benchmark = {
  name: 'installers (NSIS, Inno Setup) under Wine',
  async run({ quick, log }) {
    const wine = await prepareWine();
    const missing = !wine.ok ? wine.reason : findOnPath('makensis') === null ? 'makensis not found' : innoWineProblem()?.reason;
    if (!wine.ok || missing) throw new Error(`needs the Wine tier's tools (${missing}): ${wine.ok ? 'apt-get install nsis wine32:i386' : wine.install}`);
    const cleanups: (() => unknown)[] = [];
    const context = { after: (fn: () => unknown) => cleanups.push(fn), diagnostic: () => undefined };
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-installers-'));
    try {
      const pkg = await buildTestPackage(context, '1.0.0');
      const installed = treeSize(pkg.appDir).kb * 1024;
      const updater = fs.statSync(path.join(pkg.appDir, 'resources', 'updater', 'outpost-updater.exe')).size;
      const compression = quick ? 'fast' : 'release';
      const options = { repoRoot: wine.wine.repoRoot, appDir: pkg.appDir, outDir: path.join(work, 'out'), version: '1.0.0', compression, log } as const;
      const nsis = await buildNsisInstaller(options);
      const inno = await buildInnoInstaller(options);
      log(`installed ${(installed / MIB).toFixed(1)} MiB; NSIS ${(nsis.bytes / MIB).toFixed(1)} MiB in ${(nsis.ms / 1000).toFixed(1)} s, Inno ${(inno.bytes / MIB).toFixed(1)} MiB in ${(inno.ms / 1000).toFixed(1)} s (${compression})`);

      // The baselines: the same files copied, and deleted, by this process.
      const copied = path.join(work, 'copy');
      const copy = timed(() => fs.cpSync(pkg.appDir, copied, { recursive: true }));
      const remove = timed(() => fs.rmSync(copied, { recursive: true }));

      const env = { OUTPOST_HOME: toWindowsPath(path.join(work, 'home')) };
      const nsisLab = new NsisLab(wine.wine, work, env);
      const innoLab = new InnoLab(wine.wine, work, env);
      cleanups.push(() => nsisLab.cleanUp(), () => innoLab.cleanUp(), () => stopWine(wine.wine));
      await nsisLab.start();
      const nsisDir = path.join(work, 'nsis', 'Outpost');
      nsisLab.installedIn(nsisDir);
      const nsisInstall = await timedAsync(async () => check(await nsisLab.install(nsis, `/S /CURRENTUSER /NOSTART /D=${toWindowsPath(nsisDir)}`)));
      const nsisUninstall = await timedAsync(() => nsisLab.uninstall('HKCU', ''));
      const innoDir = path.join(work, 'inno', 'Outpost');
      innoLab.installedIn(innoDir);
      const innoInstall = await timedAsync(async () => check(await innoLab.setup(inno, ['/CURRENTUSER', '/NOSTART', `/DIR=${toWindowsPath(innoDir)}`])));
      const innoUninstall = await timedAsync(() => innoLab.uninstall('HKCU', []));
      log(`copy ${copy.toFixed(0)} ms, delete ${remove.toFixed(0)} ms; NSIS install ${nsisInstall.toFixed(0)} ms, uninstall ${nsisUninstall.toFixed(0)} ms; Inno install ${innoInstall.toFixed(0)} ms, uninstall ${innoUninstall.toFixed(0)} ms`);

      const sizeGoal = quick ? 'none (quick: files stored, not compressed)' : 'informational (LZMA, solid)';
      const figures: Figure[] = [
        { name: `NSIS installer (${compression})`, unit: 'MiB', value: nsis.bytes / MIB, baseline: installed / MIB, baselineName: 'installed size', goal: sizeGoal, met: true },
        { name: `Inno Setup installer (${compression})`, unit: 'MiB', value: inno.bytes / MIB, baseline: installed / MIB, baselineName: 'installed size', goal: sizeGoal, met: true },
        { name: "the updater executable's share", unit: 'MiB', value: updater / MIB, baseline: installed / MIB, baselineName: 'installed size', goal: 'informational', met: true },
        { name: 'NSIS silent install (Wine)', unit: 'ms', value: nsisInstall, baseline: copy, baselineName: 'copying the files', goal: 'informational', met: true },
        { name: 'NSIS silent uninstall (Wine)', unit: 'ms', value: nsisUninstall, baseline: remove, baselineName: 'deleting the files', goal: 'informational', met: true },
        { name: 'Inno silent install (Wine)', unit: 'ms', value: innoInstall, baseline: copy, baselineName: 'copying the files', goal: 'informational', met: true },
        { name: 'Inno silent uninstall (Wine)', unit: 'ms', value: innoUninstall, baseline: remove, baselineName: 'deleting the files', goal: 'informational', met: true },
      ];
      return figures;
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup();
      fs.rmSync(work, { recursive: true, force: true });
    }
  },
};

function check<T extends { code: number | null; log: string }>(ran: T): T {
  if (ran.code !== 0) throw new Error(`setup exited ${ran.code}: ${ran.log}`);
  return ran;
}

function timed(work: () => void): number {
  const t0 = process.hrtime.bigint();
  work();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function timedAsync(work: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
