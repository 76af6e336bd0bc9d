/**
 * A release build carries no test switches. The `outpost` command is bundled as a release
 * (tools/build/bundle.ts: `__OUTPOST_RELEASE__` folds DEVELOPMENT_BUILD to false), installed with the
 * updater's single executable (itself a release bundle) and the organisation's trust root, and run
 * with every switch set the way an attacker with a foothold in the user's environment would set them.
 * It must update itself with what is installed, and only that.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { storagePaths } from '../../app/base/storage-layout.js';
import { readJournal, readLastUpdate } from '../../app/base/update-records.js';
import { bundleEntry } from '../../tools/build/bundle.js';
import { buildUpdaterExecutables } from '../../tools/sea/build-updater.js';
import { logOf, statusIfRunning } from '../helpers/agent.js';
import { REPO_ROOT, tempDir } from '../helpers/paths.js';
import { Child, READY } from '../helpers/processes.js';
import { ReleaseLab, treeOf } from '../helpers/release-lab.js';
import { journalLines, stopWhateverRuns } from '../helpers/update-lab.js';
import { until } from '../helpers/wait.js';

/** Where an installation's bundle lives: locateInstallation takes the folder three levels up as the installation. */
const BUNDLE = 'dist/app/main/outpost.cjs';
const UPDATER = 'updater/outpost-updater';

test('a release build ignores every test switch: the installed updater and the built-in trust root are the only ones it uses, and it updates itself', async (t) => {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    t.skip(`the updater's Linux x64 executable runs on Linux x64 only (this is ${process.platform}-${process.arch})`);
    return;
  }
  const bundle = await bundleEntry({ repoRoot: REPO_ROOT, entry: path.join(REPO_ROOT, 'dist', 'app', 'main', 'headless-entry.js'), format: 'cjs', release: true, external: ['ffi-rs', '@napi-rs/keyring'] });
  const built = await buildUpdaterExecutables({ repoRoot: REPO_ROOT, platforms: ['linux'], outDir: tempDir(t, 'outpost-sea-') });
  const updater = fs.readFileSync(built.executables[0]?.path ?? assert.fail('no updater executable'));

  const lab = new ReleaseLab(t);
  await lab.startServer();
  // The bundle loads its native packages from beside the installation, as a packaged app does.
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(lab.root, 'node_modules'));
  const release = (version: string) => {
    const dir = lab.app(version, { [BUNDLE]: bundle, [UPDATER]: updater, 'trust/root.json': fs.readFileSync(path.join(lab.keys, 'root.json')) });
    fs.chmodSync(path.join(dir, UPDATER), 0o755);
    return dir;
  };
  const install = release('1.0.0');
  lab.publish(install, '1.0.0');

  // What the switches would choose instead: another root (keys the feed was not signed with), another
  // installation, another updater; a hold that nobody releases and a crash of the updater.
  const otherKeys = path.join(lab.root, 'other-keys');
  lab.release(['keygen', '--out', otherKeys]);
  const decoyInstall = lab.app('9.9.9', {});
  const marker = path.join(lab.root, 'decoy-updater-ran');
  const decoyUpdater = path.join(lab.root, 'decoy-updater');
  fs.writeFileSync(decoyUpdater, `#!/bin/sh\ntouch '${marker}'\n`, { mode: 0o755 });
  const home = lab.home({ trustFile: path.join(otherKeys, 'root.json'), update: { hand_off: true } });
  const switches = {
    OUTPOST_INSTALL_DIR: decoyInstall,
    OUTPOST_UPDATER_EXE: decoyUpdater,
    OUTPOST_TEST_HOLD_STATE: `UPDATING_DOWNLOADING:${path.join(lab.root, 'never-released')}`,
    OUTPOST_UPDATER_TEST_CRASH_AT: 'backup:begin',
  };
  const a = new Child(process.execPath, [path.join(install, BUNDLE)], { ...process.env, OUTPOST_HOME: home, ...switches });
  t.after(() => a.kill('SIGKILL'));
  stopWhateverRuns(t, home, install);
  await a.waitFor(READY);
  await until('the first check', () => logOf(home).includes('no update: 1.0.0 is the version'));
  assert.match(logOf(home), /config update\.trust_file \(.*other-keys\/root\.json\) is ignored: a release trusts only the root built into its installation/);

  const v2 = release('1.1.0');
  lab.publish(v2, '1.1.0');
  const b = await until('1.1.0 healthy', async () => {
    const status = await statusIfRunning(home, install);
    return status?.version === '1.1.0' && status.state === 'IDLE' && status;
  }, 60_000);
  assert.notEqual(b.pid, a.pid);
  const files = storagePaths(home).updates;
  await until('the outcome', () => readLastUpdate(files) !== null);
  const last = readLastUpdate(files);
  assert.equal(last?.outcome, 'committed', 'the updater did not crash at backup:begin');
  assert.deepEqual(treeOf(install), treeOf(v2), 'the installation the bundle runs from was updated, not the decoy');
  assert.deepEqual(fs.readdirSync(decoyInstall), ['package.json'], 'the decoy installation was not touched');
  assert.equal(fs.existsSync(marker), false, 'the decoy updater never ran');
  const steps = journalLines(readJournal(files.journal(last?.job_id ?? '')));
  assert.ok(steps.includes('backup:end') && steps.at(-1) === 'outcome:committed', steps.join(' '));
  assert.doesNotMatch(logOf(home), /test hold/, 'no hold in UPDATING_DOWNLOADING');
});
