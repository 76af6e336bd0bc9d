import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { storagePaths } from '../../app/base/storage-layout.js';
import type { LockRecord } from '../../app/common/process-identity.js';
import { DEFAULT_CONFIG } from '../../app/main/core/config-schema.js';
import { createPlatform } from '../../app/main/platform/index.js';
import { lockRecordOf, logOf } from '../helpers/agent.js';
import { DIST, tempDir } from '../helpers/paths.js';
import { Child, outpostEnv, READY, runOutpost, startOutpost, startRunningAgent } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';

const platform = createPlatform();

function writeConfig(home: string, lock: { heartbeat_ms: number; stale_ms: number }) {
  fs.writeFileSync(storagePaths(home).config, JSON.stringify({ ...DEFAULT_CONFIG, lock }));
}

function plantRecord(home: string, record: object) {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  fs.writeFileSync(storagePaths(home).lock, JSON.stringify(record));
}

function recordFor(pid: number, startTime: string | null, heartbeat = new Date()) {
  return { pid, start_time: startTime, version: '0.0.9', heartbeat: heartbeat.toISOString(), acquired_at: heartbeat.toISOString(), token: 'planted' };
}

/** The lock record, or null while it is absent or caught half-rewritten by a heartbeat. */
function recordIfWhole(home: string): LockRecord | null {
  try {
    return lockRecordOf(home);
  } catch {
    return null;
  }
}

/**
 * Waits until `holder` writes a heartbeat stamped after `since` (wall clock, which the record holds).
 * A holder stamps the time, checks that the lock file is still the one it created, and only then
 * writes: such a heartbeat proves that after `since` it still held the lock and kept running. Fails
 * at once if the holder exits or another pid holds the lock.
 */
async function heartbeatAfter(home: string, holder: Child, since: number): Promise<void> {
  await until(`a heartbeat of pid ${holder.pid} stamped after ${new Date(since).toISOString()}`, () => {
    if (holder.process.exitCode !== null || holder.process.signalCode !== null) throw new Error(`pid ${holder.pid} exited; stderr:\n${holder.stderr}`);
    const record = recordIfWhole(home);
    if (record && record.pid !== holder.pid) throw new Error(`the lock is held by pid ${record.pid}, not ${holder.pid}`);
    return record !== null && Date.parse(record.heartbeat) > since;
  });
}

/** Linux: the process is stopped (SIGSTOP took effect), so it writes nothing more until SIGCONT. */
function isStopped(pid: number): boolean {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
}

test('a second instance exits 2 naming the holder pid, and leaves the holder alone', async (t) => {
  const home = tempDir(t);
  const first = await startRunningAgent(home);
  t.after(() => first.kill('SIGKILL'));
  const second = await runOutpost(home);
  assert.equal(second.code, 2);
  assert.match(second.stderr, new RegExp(`Another Outpost is running \\(pid ${first.pid},`));
  assert.equal(lockRecordOf(home).pid, first.pid);
  first.kill('SIGTERM');
  assert.equal((await first.finish()).code, 0);
});

test('SIGKILLed holder: the next instance takes over in under 30 s, not after the 60 s stale limit, logging that the holder is gone', async (t) => {
  const home = tempDir(t);
  writeConfig(home, { heartbeat_ms: 2_000, stale_ms: 60_000 });
  const first = await startRunningAgent(home);
  first.kill('SIGKILL');
  await first.finish();
  const started = Date.now();
  const second = await startRunningAgent(home);
  t.after(() => second.kill('SIGKILL'));
  assert.ok(Date.now() - started < 30_000, 'took over without waiting for the 60 s stale limit');
  assert.equal(lockRecordOf(home).pid, second.pid);
  assert.match(logOf(home), new RegExp(`lock is stale: its holder, pid ${first.pid}, is gone; taking it over`));
  second.kill('SIGTERM');
  assert.equal((await second.finish()).code, 0);
});

test('a record naming a live pid of another process (pid reuse) is taken over', async (t) => {
  const home = tempDir(t);
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => other.kill('SIGKILL'));
  const pid = other.pid as number;
  plantRecord(home, recordFor(pid, 'linux:some-other-boot:1'));
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  assert.match(logOf(home), new RegExp(`pid ${pid} now belongs to another process \\(pid reused\\)`));
  assert.equal(lockRecordOf(home).pid, agent.pid);
  assert.equal(other.exitCode, null, 'the unrelated process is left alone');
});

test('a record naming a live process with its true start time and a fresh heartbeat is respected', async (t) => {
  const home = tempDir(t);
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => other.kill('SIGKILL'));
  const pid = other.pid as number;
  plantRecord(home, recordFor(pid, platform.processStartTime(pid)));
  const result = await runOutpost(home);
  assert.equal(result.code, 2);
  assert.match(result.stderr, new RegExp(`pid ${pid}`));
});

test('a garbage lock record is taken over, not crashed on', async (t) => {
  const home = tempDir(t);
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  fs.writeFileSync(storagePaths(home).lock, '\u0000\u0000{"pid": "nonsense');
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  assert.match(logOf(home), /lock is stale: its record is unreadable; taking it over/);
  assert.equal(lockRecordOf(home).pid, agent.pid);
});

test('a frozen holder (SIGSTOP) is judged stale by its heartbeat and taken over; woken, it exits 2 saying why, and the successor keeps running with its lock and IPC endpoint', async (t) => {
  const home = tempDir(t);
  // Nothing here depends on how fast a process runs: the successor is started only once the frozen
  // heartbeat is older than the limit (read from the record, on the clock the successor judges by),
  // and no running agent's heartbeat is judged by anyone, so a loaded machine only makes waits longer.
  const staleMs = 1_000;
  writeConfig(home, { heartbeat_ms: 200, stale_ms: staleMs });
  const frozen = await startRunningAgent(home);
  t.after(() => frozen.kill('SIGKILL'));
  frozen.kill('SIGSTOP');
  await until('the holder stopped', () => isStopped(frozen.pid));
  const lastBeat = Date.parse(lockRecordOf(home).heartbeat);
  await until('the frozen heartbeat older than the stale limit', () => Date.now() - lastBeat > staleMs);
  const successor = await startRunningAgent(home);
  t.after(() => successor.kill('SIGKILL'));
  assert.match(logOf(home), new RegExp(`pid ${frozen.pid} is alive but its heartbeat stopped`));
  assert.equal(lockRecordOf(home).pid, successor.pid);

  frozen.kill('SIGCONT');
  const woke = await frozen.finish();
  assert.equal(woke.code, 2, 'the woken holder exits with "another instance holds the lock"');
  assert.match(woke.stderr, new RegExp(`lock lost: the lock was taken over by pid ${successor.pid}`));
  assert.equal(lockRecordOf(home).pid, successor.pid, 'the woken holder did not remove the new lock');
  // Anything the woken holder did to the lock, it did before it exited: a later heartbeat of the successor proves it untouched.
  await heartbeatAfter(home, successor, Date.now());
  assert.match(logOf(home), /taking over the IPC endpoint from a previous agent that no longer answers/);
  const status = await runOutpost(home, ['status']);
  assert.equal(JSON.parse(status.stdout).pid, successor.pid, 'the woken holder did not remove the successor\'s IPC socket');
  successor.kill('SIGTERM');
  assert.equal((await successor.finish()).code, 0);
  assert.equal(fs.existsSync(storagePaths(home).lock), false);
});

test('many contenders racing for one stale lock: exactly one wins, the others exit 2 naming it, and it still holds the lock after they all left', async (t) => {
  const home = tempDir(t);
  // A fast heartbeat, so that a second holder that thought it had won would be caught and stop. The
  // default stale limit (30 s), so that no contender takes over a winner that is merely slow: 8 Node
  // processes starting at once on a loaded 2-core machine can starve the winner for seconds (at 1 s,
  // a winner busy loading modules was sometimes, rightly, taken over). The planted record's pid is
  // gone, so it is stale at once whatever the limit.
  writeConfig(home, { heartbeat_ms: 200, stale_ms: 30_000 });
  plantRecord(home, recordFor(2 ** 22 + 12_345, null));
  const contenders = Array.from({ length: 8 }, () => startOutpost(home));
  t.after(() => {
    for (const c of contenders) c.kill('SIGKILL');
  });
  // Each contender either reports running or exits; wait until all have decided.
  await Promise.all(contenders.map((c) => Promise.race([c.waitFor(READY, 30_000).catch(() => undefined), c.exited])));
  const running = contenders.filter((c) => READY.test(c.stderr) && c.process.exitCode === null);
  assert.equal(running.length, 1, `one runner, got ${running.length}`);
  const winner = running[0] as Child;
  assert.equal(lockRecordOf(home).pid, winner.pid);
  for (const loser of contenders.filter((c) => c !== winner)) {
    const done = await loser.finish();
    assert.equal(done.code, 2, done.stderr);
    assert.match(done.stderr, new RegExp(`Another Outpost is running \\(pid ${winner.pid},`));
    assert.doesNotMatch(done.stderr, /lock lost/, 'no loser ever believed it held the lock');
  }
  // A second holder would have found its lock file replaced at its next heartbeat and stopped; the
  // winner's heartbeat after every loser left proves that it is not that one.
  await heartbeatAfter(home, winner, Date.now());
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal}: graceful shutdown, exit 0, lock released, reason logged`, async (t) => {
    const home = tempDir(t);
    const agent = await startRunningAgent(home);
    agent.kill(signal);
    const done = await agent.finish();
    assert.equal(done.code, 0);
    assert.equal(fs.existsSync(storagePaths(home).lock), false);
    const log = logOf(home);
    assert.match(log, new RegExp(`state IDLE -> SHUTTING_DOWN: received ${signal}`));
    // Reverse order of start-up: the lock goes before the log's last line.
    assert.ok(log.indexOf('lock released') < log.lastIndexOf('stopped'));
  });
}

for (const [mode, code, logged] of [
  ['throw', 70, /uncaught error; shutting down.*fixture: thrown after start/],
  ['reject', 70, /uncaught error; shutting down.*fixture: rejected after start/],
  ['exit', 9, /lock released/],
] as const) {
  test(`lock released when the process leaves by ${mode === 'exit' ? 'process.exit' : `an uncaught ${mode}`}`, async (t) => {
    const home = tempDir(t);
    const child = new Child(process.execPath, [path.join(DIST, 'test', 'fixtures', 'agent-then.js'), mode], outpostEnv(home));
    const done = await child.finish();
    assert.equal(done.code, code, done.stderr);
    assert.equal(fs.existsSync(storagePaths(home).lock), false, 'lock file removed');
    assert.match(logOf(home), logged);
    const next = await startRunningAgent(home);
    next.kill('SIGTERM');
    assert.equal((await next.finish()).code, 0);
  });
}

for (const [why, owner, ageS] of [
  ['its owner died mid-takeover', { pid: 2 ** 22 + 777, start_time: null, token: 'dead' }, 0],
  ['it is older than any live takeover', { pid: process.pid, start_time: null, token: 'old' }, 60],
] as const) {
  test(`a takeover mutex left behind is reclaimed when ${why}`, async (t) => {
    const home = tempDir(t);
    plantRecord(home, recordFor(2 ** 22 + 12_345, null));
    const mutex = `${storagePaths(home).lock}.takeover`;
    fs.writeFileSync(mutex, JSON.stringify(owner));
    if (ageS > 0) fs.utimesSync(mutex, new Date(Date.now() - ageS * 1000), new Date(Date.now() - ageS * 1000));
    const agent = await startRunningAgent(home);
    t.after(() => agent.kill('SIGKILL'));
    assert.match(logOf(home), /removed an abandoned takeover mutex/);
    assert.equal(lockRecordOf(home).pid, agent.pid);
    assert.equal(fs.existsSync(mutex), false);
  });
}
