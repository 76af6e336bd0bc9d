import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildUpdaterExecutables } from '../../tools/sea/build-updater.js';
import { FORWARD_STEPS, ROLLBACK_STEPS } from '../../app/common/update-files.js';
import { logOf, statusIfRunning } from '../helpers/agent.js';
import { REPO_ROOT, tempDir } from '../helpers/paths.js';
import { startRunningAgent } from '../helpers/processes.js';
import { ReleaseLab, treeOf } from '../helpers/release-lab.js';
import {
  AGENT_ENTRY,
  isAlive,
  journalLines,
  journalSteps,
  lastJournal,
  leftovers,
  noMoreHandOffs,
  runningA,
  stopWhateverRuns,
  V1,
  V2,
} from '../helpers/update-lab.js';
import { until } from '../helpers/wait.js';

test('a successful update A -> B: the updater swaps, starts B, sees it healthy, commits; the tree is B byte for byte', async (t) => {
  const { lab, home, install, a } = await runningA(t);
  const v2 = lab.app('1.1.0', V2);
  lab.publish(v2, '1.1.0');
  const old = await a.finish(30_000);
  assert.equal(old.code, 0, old.stderr);
  assert.match(old.stderr, /stopped \(handed over to the updater for 1\.1\.0\)/);
  const b = await until('B healthy', async () => {
    const status = await statusIfRunning(home, install);
    return status?.version === '1.1.0' && status.state === 'IDLE' && status;
  });
  assert.notEqual(b.pid, a.pid);
  await until('the commit', () => fs.existsSync(path.join(home, 'updates', 'last-update.json')));
  const last = JSON.parse(fs.readFileSync(path.join(home, 'updates', 'last-update.json'), 'utf8'));
  assert.equal(last.outcome, 'committed');
  assert.deepEqual(treeOf(install), treeOf(v2), 'the installation is B, byte for byte');
  assert.equal(fs.existsSync(`${install}.outpost-backup`), false, 'the backup is gone');
  assert.deepEqual(
    journalSteps(home),
    [...FORWARD_STEPS.flatMap((s) => [`${s}:begin`, `${s}:end`]), 'outcome:committed'],
    'every step journaled before and after, in order',
  );
  const log = logOf(home);
  assert.match(log, /state UPDATING_STAGING -> UPDATING_HANDOFF/);
  assert.match(log, /current_version 1\.0\.0 -> 1\.1\.0/, 'B records its version in config');
  const success = await until('the success report', () => lab.reports().find((r) => r.code === 'EVT_UPDATE_SUCCEEDED'));
  assert.equal(success.agent_version, '1.1.0');
  assert.deepEqual([success.context.from_version, success.context.to_version], ['1.0.0', '1.1.0']);
  assert.equal(lab.reports().length, 1, 'no error report');
  // B removes what the job needed once the updater has exited.
  await until('the clean-up', () => leftovers(home).length === 0, 10_000, () => `left: ${leftovers(home).join(', ')}`);
});


test('B crashes on start: rolled back, A runs again on its byte-identical tree, a report arrives; after two failures B is not tried again, and a newer release is', async (t) => {
  const { lab, home, install, v1Tree: before, a } = await runningA(t);

  // B's package.json has no usable version: B exits 78 at once.
  const broken = lab.app('1.1.0', V2);
  fs.writeFileSync(path.join(broken, 'package.json'), '{"name":"outpost-test-app"}');
  lab.publish(broken, '1.1.0');
  await a.finish(30_000);
  const report = await until('the report at the server', () => lab.reports().find((r) => r.code === 'ERR_UPDATE_UNHEALTHY'));
  assert.match(report.message, /rolled back: health failed: 1\.1\.0 exited during start-up/);
  // The relaunched A finds 1.1.0 offered again and tries once more; after the second failure it stops.
  await until('the circuit breaker', () => /1\.1\.0 was rolled back 2 times and is not tried again/.test(logOf(home)), 60_000);
  const again = await until('A running again', async () => {
    const status = await statusIfRunning(home, install);
    return status?.version === '1.0.0' && status.state === 'IDLE' && status;
  });
  assert.notEqual(again.pid, a.pid);
  assert.equal(again.update.last_error?.code, 'ERR_UPDATE_BLOCKED', 'status shows the breaker');
  assert.deepEqual(treeOf(install), before, 'the installation is A again, byte for byte');
  const failures = JSON.parse(fs.readFileSync(path.join(home, 'updates', 'failed-versions.json'), 'utf8'));
  assert.equal(failures['1.1.0'].count, 2);
  await until('both reports', () => lab.reports().filter((r) => r.code === 'ERR_UPDATE_UNHEALTHY').length === 2);
  const steps = journalSteps(home);
  assert.ok(steps.includes('health:fail'));
  for (const s of ROLLBACK_STEPS) assert.ok(steps.includes(`${s}:end`), `rollback step ${s} done`);

  lab.publish(lab.app('1.2.0', V2), '1.2.0');
  await until('1.2.0 healthy', async () => {
    const status = await statusIfRunning(home, install);
    return status?.version === '1.2.0' && status.state === 'IDLE';
  }, 60_000);
});

test('the updater fails to start (it exits at once): A stays up and back in IDLE on its untouched tree, a report arrives, nothing is left behind', async (t) => {
  const { lab, home, install, v1Tree, a } = await runningA(t, { OUTPOST_UPDATER_EXE: '/bin/false' });
  lab.publish(lab.app('1.1.0', V2), '1.1.0');
  const report = await until('the report at the server', () => lab.reports().find((r) => r.code === 'ERR_UPDATE_HANDOFF'));
  assert.match(report.message, /The updater did not start: it ended \(exit code 1\)\. The agent stays on 1\.0\.0\./);
  await until('A back in IDLE', async () => {
    const status = await statusIfRunning(home, install);
    return status?.pid === a.pid && status.version === '1.0.0' && status.state === 'IDLE';
  });
  assert.equal(a.process.exitCode, null, 'A still runs');
  assert.match(logOf(home), /state UPDATING_HANDOFF -> IDLE: update failed; will retry/);
  assert.deepEqual(treeOf(install), v1Tree);
  const left = fs.readdirSync(path.join(home, 'updates')).filter((n) => n === 'job.json' || n.startsWith('updater-') || n.startsWith('journal-'));
  assert.deepEqual(left, [], 'no job record, no copy of the updater, no journal');
});

test('the updater dies after B proved itself healthy: B notices, and the recovery it starts commits', async (t) => {
  const { lab, home, install, a } = await runningA(t, { OUTPOST_UPDATER_TEST_CRASH_AT: 'health:end' });
  const v2 = lab.app('1.1.0', V2);
  lab.publish(v2, '1.1.0');
  await a.finish(30_000);
  // Nobody but B acts: it follows the job, finds its updater gone, and starts the recovery.
  await until('the commit', () => fs.existsSync(path.join(home, 'updates', 'last-update.json')));
  const last = JSON.parse(fs.readFileSync(path.join(home, 'updates', 'last-update.json'), 'utf8'));
  assert.deepEqual([last.outcome, last.reason], ['committed', 'finished by recovery']);
  const b = await until('B running', async () => {
    const status = await statusIfRunning(home, install);
    return status?.version === '1.1.0' && status.state === 'IDLE' && status;
  });
  assert.equal(b.pid, Number(lastJournal(home).steps.find((e) => e.step === 'launch' && e.phase === 'end')?.detail?.pid), 'the B the updater started, never restarted');
  assert.match(logOf(home), /the updater of [0-9a-f-]+ ended before the job did; its recovery \(pid \d+\) finishes it/);
  assert.deepEqual(treeOf(install), treeOf(v2));
  assert.equal(fs.existsSync(`${install}.outpost-backup`), false, 'the backup is gone');
  await until('the success report', () => lab.reports().find((r) => r.code === 'EVT_UPDATE_SUCCEEDED'));
});

test('B starts but never becomes healthy: stopped after update.health_timeout_s, A restored byte for byte and running, a report arrives', async (t) => {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const home = lab.home({ update: { hand_off: true, health_timeout_s: 3 } });
  const install = lab.app('1.0.0', { ...V1, 'main.mjs': AGENT_ENTRY });
  const before = treeOf(install);
  lab.publish(install, '1.0.0');
  const a = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install }, path.join(install, 'main.mjs'));
  t.after(() => a.kill('SIGKILL'));
  stopWhateverRuns(t, home, install);
  await until('the first check', () => logOf(home).includes('no update: 1.0.0 is the version'));

  // 1.1.0's entry point starts and hangs: it never takes the lock, never reaches IDLE.
  lab.publish(lab.app('1.1.0', { ...V1, 'main.mjs': 'setInterval(() => {}, 60_000);\n' }), '1.1.0');
  await a.finish(30_000);
  noMoreHandOffs(home);
  const report = await until('the report at the server', () => lab.reports().find((r) => r.code === 'ERR_UPDATE_UNHEALTHY'));
  assert.match(report.message, /rolled back: health failed: 1\.1\.0 did not become healthy within 3000 ms/);
  const again = await until('A running again', async () => {
    const status = await statusIfRunning(home, install);
    return status?.version === '1.0.0' && status.state === 'IDLE' && status;
  });
  assert.notEqual(again.pid, a.pid);
  assert.deepEqual(treeOf(install), before, 'the installation is A again, byte for byte');
  // The updater writes the outcome after it started A: A may answer first.
  await until('the outcome', () => journalSteps(home).some((line) => line.startsWith('outcome:')));
  const journal = lastJournal(home);
  const hung = Number(journal.steps.find((e) => e.step === 'launch' && e.phase === 'end')?.detail?.pid);
  assert.ok(hung > 0);
  assert.equal(isAlive(hung), false, 'the hung 1.1.0 was stopped');
  const steps = journalLines(journal);
  assert.deepEqual(steps.slice(steps.indexOf('health:fail')), ['health:fail', ...ROLLBACK_STEPS.flatMap((s) => [`${s}:begin`, `${s}:end`]), 'outcome:rolled_back']);
});

test('the swap fails half-way (the copy across file systems breaks off): the partial copy is removed, A restored and running, a report arrives', async (t) => {
  // The storage folder (and so the staged tree) on /dev/shm, the installation in the temp folder: the
  // swap cannot rename across them and copies. The updater runs under a file size limit of 512 KiB
  // (RLIMIT_FSIZE, set by a wrapper before it starts the real updater), so its copy of 1.1.0's 2 MB
  // file breaks off half-way, for real.
  assert.notEqual(fs.statSync('/dev/shm').dev, fs.statSync(os.tmpdir()).dev, 'this test needs /dev/shm on a file system of its own');
  const parent = fs.mkdtempSync(path.join('/dev/shm', 'outpost-test-'));
  t.after(() => fs.rmSync(parent, { recursive: true, force: true }));
  const wrapper = path.join(tempDir(t, 'outpost-wrapper-'), 'outpost-updater');
  const script = path.join(REPO_ROOT, 'bin', 'outpost-updater.js');
  fs.writeFileSync(wrapper, `#!/bin/sh\nulimit -f 512\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(script)} "$@"\n`, { mode: 0o755 });

  const lab = new ReleaseLab(t);
  await lab.startServer();
  const home = lab.home({ parent, update: { hand_off: true } });
  const install = lab.app('1.0.0', V1);
  const before = treeOf(install);
  lab.publish(install, '1.0.0');
  const a = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install, OUTPOST_UPDATER_EXE: wrapper });
  t.after(() => a.kill('SIGKILL'));
  stopWhateverRuns(t, home, install);
  await until('the first check', () => logOf(home).includes('no update: 1.0.0 is the version'));
  lab.publish(lab.app('1.1.0', { ...V2, 'resources/big.bin': crypto.randomBytes(2 * 1024 * 1024) }), '1.1.0');
  await a.finish(30_000);
  noMoreHandOffs(home);

  const report = await until('the report at the server', () => lab.reports().find((r) => r.code === 'ERR_UPDATE_SWAP'));
  assert.match(report.message, /rolled back: swap failed: cannot copy .* \(another file system\)/);
  const steps = journalSteps(home);
  assert.ok(steps.indexOf('backup:end') >= 0 && steps.indexOf('backup:end') < steps.indexOf('swap:fail'), `the backup was made before the swap failed: ${steps.join(' ')}`);
  await until('A running again', async () => {
    const status = await statusIfRunning(home, install);
    return status?.version === '1.0.0' && status.state === 'IDLE';
  });
  assert.deepEqual(treeOf(install), before, 'the installation is A again, byte for byte');
  assert.deepEqual(
    fs.readdirSync(path.dirname(install)).filter((n) => n.startsWith(path.basename(install))),
    [path.basename(install)],
    'no backup or partial copy left beside the installation',
  );
});

test('with the single executable (Linux x64): it runs from a copy beside the job, swaps, and the copy is removed after the commit', async (t) => {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    t.skip(`the Linux x64 executable runs on Linux x64 only (this is ${process.platform}-${process.arch})`);
    return;
  }
  const built = await buildUpdaterExecutables({ repoRoot: REPO_ROOT, platforms: ['linux'], outDir: tempDir(t, 'outpost-sea-') });
  const exe = built.executables[0]?.path as string;
  const { lab, home, install, a } = await runningA(t, { OUTPOST_UPDATER_EXE: exe });
  const v2 = lab.app('1.1.0', V2);
  lab.publish(v2, '1.1.0');
  await a.finish(30_000);
  await until('B healthy', async () => {
    const status = await statusIfRunning(home, install);
    return status?.version === '1.1.0' && status.state === 'IDLE';
  });
  await until('the commit', () => fs.existsSync(path.join(home, 'updates', 'last-update.json')));
  assert.equal(JSON.parse(fs.readFileSync(path.join(home, 'updates', 'last-update.json'), 'utf8')).outcome, 'committed');
  assert.deepEqual(treeOf(install), treeOf(v2));
  const copy = /updater running \(pid \d+, (.*)\): 1\.0\.0 -> 1\.1\.0/.exec(logOf(home))?.[1];
  assert.ok(copy, 'the updater logged where it ran from');
  assert.match(copy, new RegExp(`^${path.join(home, 'updates', 'updater-')}[0-9a-f-]+/outpost-updater$`), 'the copy beside the job, not the build output');
  await until('the copy removed', () => !fs.existsSync(path.dirname(copy)), 10_000);
  await until('the clean-up', () => leftovers(home).length === 0, 10_000, () => `left: ${leftovers(home).join(', ')}`);
});
