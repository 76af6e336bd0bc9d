/**
 * Packaged apps for the installer tests: the real `npm run dist` packaging (tools/dist/package-app.ts,
 * electron-builder, the fuses, the updater's executable) around the STAND-IN Electron
 * (stand-in-electron.ts), which runs the app's `outpost` entry under Wine. Like the stand-in, the
 * package's updater executable gets the Wine 8 patch (V8's VirtualAlloc2 lookup, tools/sea/pe.ts),
 * which no shipped executable has, so that the package updates itself under Wine.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { type Organisation, type PackagedApp, packageApp } from '../../tools/dist/package-app.js';
import { disableVirtualAlloc2Lookup, updatePeChecksum } from '../../tools/sea/pe.js';
import { REPO_ROOT, tempDir } from './paths.js';
import { standInElectron } from './stand-in-electron.js';

export interface TestPackage extends PackagedApp {
  /** The work folder packageApp used (app/, resources/, win-unpacked/). */
  readonly outDir: string;
}

/** Packs `version` of the app (about 25 s once the stand-in and the updater's executable are cached). */
export async function buildTestPackage(t: Pick<TestContext, 'after' | 'diagnostic'>, version: string, organisation: Organisation = { trustRoot: null, backend: null }): Promise<TestPackage> {
  const outDir = path.join(tempDir(t, 'outpost-package-'), version);
  const lines: string[] = [];
  const packaged = await packageApp({ repoRoot: REPO_ROOT, outDir, organisation, electronDist: await standInElectron(), version, log: (line) => lines.push(line) });
  t.diagnostic(`packaged ${version}: ${lines.length} build steps`);
  const updater = path.join(packaged.appDir, 'resources', 'updater', 'outpost-updater.exe');
  const bytes = fs.readFileSync(updater);
  disableVirtualAlloc2Lookup(bytes);
  updatePeChecksum(bytes);
  fs.writeFileSync(updater, bytes);
  return { ...packaged, outDir };
}
