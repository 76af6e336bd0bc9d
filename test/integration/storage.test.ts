import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { LinuxPlatform } from '../../app/main/platform/linux.js';
import { OUTPOST_BIN, tempDir } from '../helpers/paths.js';
import { Child, outpostEnv, READY, runOutpost, startRunningAgent } from '../helpers/processes.js';

const mode = (p: string) => fs.statSync(p).mode & 0o777;

test('storage is created 0700 and owned by us; config and log files are 0600', async (t) => {
  const home = path.join(tempDir(t), 'nested', 'home');
  const agent = await startRunningAgent(home);
  agent.kill('SIGTERM');
  await agent.finish();
  assert.equal(mode(home), 0o700);
  assert.equal(fs.statSync(home).uid, process.geteuid?.());
  assert.equal(mode(path.join(home, 'logs')), 0o700);
  assert.equal(mode(path.join(home, 'config.json')), 0o600);
  assert.equal(mode(path.join(home, 'logs', 'outpost.log')), 0o600);
});

for (const unsafe of [0o777, 0o770, 0o702]) {
  test(`a storage folder writable by others (mode 0${unsafe.toString(8)}) is refused with exit 77 and left as it was`, async (t) => {
    const home = tempDir(t);
    fs.chmodSync(home, unsafe);
    const result = await runOutpost(home);
    assert.equal(result.code, 77);
    assert.match(result.stderr, /is writable by other users .*chmod 700/);
    assert.equal(mode(home), unsafe, 'not silently "fixed"');
    assert.deepEqual(fs.readdirSync(home), [], 'nothing written there');
  });
}

test('a storage folder readable by others is tightened to 0700, and the change logged', async (t) => {
  const home = tempDir(t);
  fs.chmodSync(home, 0o755);
  const agent = await startRunningAgent(home);
  agent.kill('SIGTERM');
  await agent.finish();
  assert.equal(mode(home), 0o700);
  assert.match(fs.readFileSync(path.join(home, 'logs', 'outpost.log'), 'utf8'), /mode 0755 -> 0700/);
});

test('a storage folder owned by another user is refused with exit 77', async (t) => {
  const root = process.geteuid?.() === 0;
  // As root, hand a folder to nobody; otherwise /tmp (owned by root) is someone else's folder.
  const home = root ? tempDir(t) : '/tmp';
  if (root) fs.chownSync(home, 65534, 65534);
  const result = await runOutpost(home);
  assert.equal(result.code, 77);
  assert.match(result.stderr, /belongs to uid \d+, not to this user/);
});

test('Linux default storage: /var/lib/outpost per machine, $XDG_STATE_HOME/outpost (or ~/.local/state) per user', () => {
  assert.equal(new LinuxPlatform({ XDG_STATE_HOME: '/x/state', HOME: '/home/u' }).defaultStorageDir(true), '/var/lib/outpost');
  assert.equal(new LinuxPlatform({ XDG_STATE_HOME: '/x/state', HOME: '/home/u' }).defaultStorageDir(false), '/x/state/outpost');
  assert.equal(new LinuxPlatform({ HOME: '/home/u' }).defaultStorageDir(false), '/home/u/.local/state/outpost');
});

test('Linux process identity: liveness, start time stable for one process, null for a dead pid', async (t) => {
  const platform = new LinuxPlatform(process.env);
  assert.equal(platform.isProcessAlive(process.pid), true);
  const mine = platform.processStartTime(process.pid);
  assert.match(mine ?? '', /^linux:[0-9a-f-]+:\d+$/);
  assert.equal(platform.processStartTime(process.pid), mine);
  const { spawnSync } = await import('node:child_process');
  const gone = spawnSync('true').pid as number;
  assert.equal(platform.isProcessAlive(gone), false);
  assert.equal(platform.processStartTime(gone), null);
  t.diagnostic(`start time of this process: ${mine}`);
});

test('the log is written whatever the working folder (a service manager starts agents from /)', async (t) => {
  const home = tempDir(t);
  const agent = new Child(process.execPath, [OUTPOST_BIN], outpostEnv(home), '/');
  t.after(() => agent.kill('SIGKILL'));
  await agent.waitFor(READY);
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
  assert.match(fs.readFileSync(path.join(home, 'logs', 'outpost.log'), 'utf8'), /state STARTING -> IDLE/);
});
