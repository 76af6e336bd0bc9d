/**
 * The installer and the self-updater agree (issue 12, point 6), under Wine, with packages built as an
 * organisation builds them (its trust root and backend inside, test/helpers/package-lab.ts, around
 * the STAND-IN Electron): NSIS installs 1.0.0 and upgrades it to 1.1.0 over the running agent; the
 * feed then publishes 1.2.0 and the installed agent updates itself (push, download, verify, the
 * updater from the package's resources, swap, health) to it; Apps & features shows 1.2.0; the
 * uninstaller, run from the entry's QuietUninstallString, still removes everything, including a
 * backup a crashed update left beside the installation.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { storagePaths } from '../../app/base/storage-layout.js';
import { readLastUpdate } from '../../app/base/update-records.js';
import { buildNsisInstaller, NSIS_APT_PACKAGE, type NsisInstaller } from '../../tools/dist/nsis.js';
import { buildTestPackage, type TestPackage } from '../helpers/package-lab.js';
import { tempDir } from '../helpers/paths.js';
import { ReleaseLab } from '../helpers/release-lab.js';
import { tierUnavailable } from '../helpers/tiers.js';
import { until } from '../helpers/wait.js';
import { stopWine, toWindowsPath } from './harness.js';
import { NSIS_ENTRY, NsisLab, onPath, RUN_KEY } from './installer-lab.js';
import { holdInstallerLock } from './installer-lock.js';
import { wineOrSkip } from './tier.js';

test('wine tier: after an installer upgrade the agent updates itself, Apps & features follows, and the uninstaller removes it all', { timeout: 20 * 60_000 }, async (t) => {
  const wine = await wineOrSkip(t);
  if (!wine) return;
  if (!onPath('makensis')) {
    tierUnavailable(t, 'wine', 'makensis not found on PATH (it builds the NSIS installer)', `apt-get install -y --no-install-recommends ${NSIS_APT_PACKAGE}`);
    return;
  }
  t.after(() => stopWine(wine));
  const timings: string[] = [];
  const timed = async <T>(what: string, work: () => Promise<T> | T): Promise<T> => {
    const started = Date.now();
    const result = await work();
    timings.push(`${what} ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
  };
  t.after(() => t.diagnostic(timings.join('; ')));

  // The organisation: its feed (empty until 1.2.0), its server on loopback, its keys.
  const feed = new ReleaseLab(t);
  const url = await feed.startServer();
  const organisation = { trustRoot: path.join(feed.keys, 'root.json'), backend: { url, ws_url: `${url.replace(/^http/, 'ws')}/ws` } };
  const work = tempDir(t, 'outpost-agree-');
  const packages: Record<string, TestPackage> = {};
  const installers: Record<string, NsisInstaller> = {};
  for (const version of ['1.0.0', '1.1.0', '1.2.0']) {
    packages[version] = await timed(`package ${version}`, () => buildTestPackage(t, version, organisation));
  }
  for (const version of ['1.0.0', '1.1.0']) {
    const appDir = packages[version]?.appDir ?? '';
    installers[version] = await buildNsisInstaller({ repoRoot: wine.repoRoot, appDir, outDir: path.join(work, 'out'), version, compression: 'fast', log: () => undefined });
  }

  const home = path.join(work, 'home');
  const lab = new NsisLab(wine, work, { OUTPOST_HOME: toWindowsPath(home) });
  t.after(() => lab.cleanUp());
  await holdInstallerLock(t, wine);
  await lab.start();
  const dir = path.join(work, 'Outpost Apps', 'Outpost');
  lab.installedIn(dir);

  const first = await timed('install 1.0.0', () => lab.install(installers['1.0.0'], `/S /CURRENTUSER /D=${toWindowsPath(dir)}`));
  assert.equal(first.code, 0, first.log);
  await lab.waitForAgent(dir, '1.0.0');
  const config = JSON.parse(fs.readFileSync(path.join(home, 'config.json'), 'utf8'));
  assert.deepEqual(config.backend, organisation.backend, "a first start writes the organisation's backend");

  const upgrade = await timed('installer upgrade to 1.1.0', () => lab.install(installers['1.1.0'], '/S'));
  assert.equal(upgrade.code, 0, upgrade.log);
  await lab.waitForAgent(dir, '1.1.0');
  assert.equal((await lab.reg(`HKCU\\${NSIS_ENTRY}`))?.get('displayversion'), '1.1.0');

  // The next release, by the feed: the agent installed by the installer takes it by itself.
  await timed('publish 1.2.0', () => feed.publish(packages['1.2.0']?.appDir ?? '', '1.2.0'));
  const updated = await timed('self-update to 1.2.0', () => lab.waitForAgent(dir, '1.2.0', 240_000));
  const files = storagePaths(home).updates;
  const last = await until('the outcome of the update', () => readLastUpdate(files) ?? undefined, 60_000);
  assert.equal(last.outcome, 'committed', JSON.stringify(last));
  assert.deepEqual([last.from, last.to], ['1.1.0', '1.2.0']);
  assert.equal(updated.state, 'IDLE');
  assert.equal(fs.readFileSync(path.join(dir, 'resources', 'app.asar')).equals(fs.readFileSync(path.join(packages['1.2.0']?.appDir ?? '', 'resources', 'app.asar'))), true, "1.2.0's files in the installation folder");
  // The updater tells Apps & features before it writes the outcome.
  assert.equal((await lab.reg(`HKCU\\${NSIS_ENTRY}`))?.get('displayversion'), '1.2.0', 'Apps & features shows the self-updated version');
  assert.ok(fs.existsSync(path.join(`${dir}.uninstall`, 'Uninstall Outpost.exe')), 'the uninstaller survived the swap (it lives beside the installation)');

  // A crash of a later update left its backup beside the installation: the uninstaller takes it too.
  fs.cpSync(path.join(dir, 'resources', 'trust'), path.join(`${dir}.outpost-backup`, 'resources', 'trust'), { recursive: true });
  const removed = await timed('uninstall', () => lab.uninstall('HKCU', ''));
  for (const leftover of [dir, `${dir}.uninstall`, `${dir}.outpost-backup`]) assert.equal(fs.existsSync(leftover), false, `${leftover} removed\n${removed.log}`);
  assert.equal(await lab.reg(`HKCU\\${NSIS_ENTRY}`), null, 'the Uninstall entry removed');
  assert.equal((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), undefined, 'the Run value removed');
  assert.deepEqual(lab.runningAgents(), [], 'no agent left running');
  assert.ok(fs.existsSync(path.join(home, 'config.json')), 'the data folder kept (a silent uninstall keeps it)');
});
