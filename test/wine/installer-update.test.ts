/**
 * The installers and the self-updater agree (issue 12, point 6), under Wine, with packages built as an
 * organisation builds them (its trust root and backend inside, test/helpers/package-lab.ts, around
 * the STAND-IN Electron). For each installer, NSIS then Inno Setup: it installs a version and
 * upgrades it to the next over the running agent; the feed then publishes a third and the installed
 * agent updates itself (push, download, verify, the updater from the package's resources, swap,
 * health); Apps & features shows the new version; the uninstaller, run from the entry's
 * QuietUninstallString, still removes everything, including a backup a crashed update left beside
 * the installation.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { storagePaths } from '../../app/base/storage-layout.js';
import { readLastUpdate } from '../../app/base/update-records.js';
import { buildInnoInstaller } from '../../tools/dist/inno.js';
import { buildNsisInstaller } from '../../tools/dist/nsis.js';
import { buildTestPackage } from '../helpers/package-lab.js';
import { tempDir } from '../helpers/paths.js';
import { ReleaseLab } from '../helpers/release-lab.js';
import { until } from '../helpers/wait.js';
import { stopWine, toWindowsPath, type Wine } from './harness.js';
import { INNO_ENTRY, InnoLab, NSIS_ENTRY, NsisLab, RUN_KEY, installerToolsOrSkip, stopwatch } from './installer-lab.js';
import { holdInstallerLock } from './installer-lock.js';
import { wineOrSkip } from './tier.js';

/** One installer as this test drives it: build, install per user into a folder, upgrade, uninstall silently. */
interface Installer {
  readonly name: string;
  /** The data folder of the agents it installs (OUTPOST_HOME). */
  readonly home: string;
  /** Its Apps & features entry under HKCU. */
  readonly entry: string;
  /** Its uninstaller, beside the installation folder. */
  readonly uninstaller: (dir: string) => string;
  build(appDir: string, version: string): Promise<(how: 'first' | 'upgrade', dir: string) => Promise<{ code: number | null; log: string }>>;
  uninstall(): Promise<{ log: string }>;
  cleanUp(): Promise<void>;
  lab: NsisLab | InnoLab;
}

function nsis(wine: Wine, work: string): Installer {
  const home = path.join(work, 'nsis-home');
  const lab = new NsisLab(wine, work, { OUTPOST_HOME: toWindowsPath(home) });
  return {
    name: 'NSIS',
    home,
    entry: NSIS_ENTRY,
    uninstaller: (dir) => path.join(`${dir}.uninstall`, 'Uninstall Outpost.exe'),
    async build(appDir, version) {
      const made = await buildNsisInstaller({ repoRoot: wine.repoRoot, appDir, outDir: path.join(work, 'out'), version, compression: 'fast', log: () => undefined });
      return (how, dir) => lab.install(made, how === 'first' ? `/S /CURRENTUSER /D=${toWindowsPath(dir)}` : '/S');
    },
    uninstall: () => lab.uninstall('HKCU', ''),
    cleanUp: () => lab.cleanUp(),
    lab,
  };
}

function inno(wine: Wine, work: string): Installer {
  const home = path.join(work, 'inno-home');
  const lab = new InnoLab(wine, work, { OUTPOST_HOME: toWindowsPath(home) });
  return {
    name: 'Inno Setup',
    home,
    entry: INNO_ENTRY,
    uninstaller: (dir) => path.join(`${dir}.uninstall`, 'unins000.exe'),
    async build(appDir, version) {
      const made = await buildInnoInstaller({ repoRoot: wine.repoRoot, appDir, outDir: path.join(work, 'out'), version, compression: 'fast', log: () => undefined });
      return (how, dir) => lab.setup(made, how === 'first' ? ['/CURRENTUSER', `/DIR=${toWindowsPath(dir)}`] : []);
    },
    uninstall: () => lab.uninstall('HKCU', []),
    cleanUp: () => lab.cleanUp(),
    lab,
  };
}

test('wine tier: after an installer upgrade the agent updates itself, Apps & features follows, and the uninstaller removes it all', { timeout: 20 * 60_000 }, async (t) => {
  const wine = await wineOrSkip(t);
  if (!wine) return;
  if (!installerToolsOrSkip(t, { nsis: true, inno: true })) return;
  t.after(() => stopWine(wine));
  const timed = stopwatch(t);

  // The organisation: its feed (empty until a release is published), its server on loopback, its keys.
  const feed = new ReleaseLab(t);
  const url = await feed.startServer();
  const organisation = { trustRoot: path.join(feed.keys, 'root.json'), backend: { url, ws_url: `${url.replace(/^http/, 'ws')}/ws` } };
  const work = tempDir(t, 'outpost-agree-');
  const installers = [nsis(wine, work), inno(wine, work)];
  // Registered before the lock is taken, so that they run while it is still held (hooks run in order).
  for (const installer of installers) t.after(() => installer.cleanUp());
  await holdInstallerLock(t, wine);

  // Each installer in turn, on versions of its own: a release published for the first is older than the second's.
  for (const [index, installer] of installers.entries()) {
    const [first, second, third] = [0, 1, 2].map((minor) => `${index + 1}.${minor}.0`) as [string, string, string];
    await t.test(`${installer.name}: installed ${first}, upgraded to ${second} by the installer, updated to ${third} by itself, uninstalled`, async (t) => {
      const { lab, home } = installer;
      const packages = Object.fromEntries(await Promise.all([first, second, third].map(async (version) => [version, await buildTestPackage(t, version, organisation)] as const)));
      const install = await timed(`${installer.name}: build`, async () => ({
        [first]: await installer.build(packages[first]?.appDir ?? '', first),
        [second]: await installer.build(packages[second]?.appDir ?? '', second),
      }));
      await lab.start();
      const dir = path.join(work, `${installer.name} Apps`, 'Outpost');
      lab.installedIn(dir);

      const installed = await timed(`${installer.name}: install ${first}`, () => install[first]?.('first', dir) ?? assert.fail());
      assert.equal(installed.code, 0, installed.log);
      await lab.waitForAgent(dir, first);
      const config = JSON.parse(fs.readFileSync(path.join(home, 'config.json'), 'utf8'));
      assert.deepEqual(config.backend, { ...organisation.backend, ca_file: null }, "a first start writes the organisation's backend");

      const upgraded = await timed(`${installer.name}: upgrade to ${second}`, () => install[second]?.('upgrade', dir) ?? assert.fail());
      assert.equal(upgraded.code, 0, upgraded.log);
      await lab.waitForAgent(dir, second);
      assert.equal((await lab.reg(`HKCU\\${installer.entry}`))?.get('displayversion'), second);

      // The next release, by the feed: the agent the installer started takes it by itself.
      await timed(`publish ${third}`, () => feed.publish(packages[third]?.appDir ?? '', third));
      const updated = await timed(`${installer.name}: self-update to ${third}`, () => lab.waitForAgent(dir, third, 240_000));
      const last = await until('the outcome of the update', () => readLastUpdate(storagePaths(home).updates) ?? undefined, 60_000);
      assert.equal(last.outcome, 'committed', JSON.stringify(last));
      assert.deepEqual([last.from, last.to], [second, third]);
      assert.equal(updated.state, 'IDLE');
      const asar = (root: string) => fs.readFileSync(path.join(root, 'resources', 'app.asar'));
      assert.ok(asar(dir).equals(asar(packages[third]?.appDir ?? '')), `${third}'s files in the installation folder`);
      // The updater tells Apps & features before it writes the outcome.
      assert.equal((await lab.reg(`HKCU\\${installer.entry}`))?.get('displayversion'), third, 'Apps & features shows the self-updated version');
      assert.ok(fs.existsSync(installer.uninstaller(dir)), 'the uninstaller survived the swap (it lives beside the installation)');

      // A crash of a later update left its backup beside the installation: the uninstaller takes it too.
      fs.cpSync(path.join(dir, 'resources', 'trust'), path.join(`${dir}.outpost-backup`, 'resources', 'trust'), { recursive: true });
      const removed = await timed(`${installer.name}: uninstall`, () => installer.uninstall());
      for (const leftover of [dir, `${dir}.uninstall`, `${dir}.outpost-backup`]) assert.equal(fs.existsSync(leftover), false, `${leftover} removed\n${removed.log}`);
      assert.equal(await lab.reg(`HKCU\\${installer.entry}`), null, `the Uninstall entry removed\n${removed.log}`);
      assert.equal((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), undefined, `the Run value removed\n${removed.log}`);
      assert.deepEqual(lab.runningAgents(), [], 'no agent left running');
      assert.ok(fs.existsSync(path.join(home, 'config.json')), 'the data folder kept (a silent uninstall keeps it)');
    });
  }
});
