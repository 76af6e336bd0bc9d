import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import type { UpdaterJob } from '../../app/common/update-files.js';
import { DEFAULT_CONFIG } from '../../app/main/core/config-schema.js';
import { isOutpostError } from '../../app/base/errors.js';
import { storagePaths } from '../../app/base/storage-layout.js';
import { sendCommand } from '../../app/main/core/ipc-client.js';
import { JobFollower } from '../../app/main/core/update/job-follower.js';
import { LinuxPlatform } from '../../app/main/platform/linux.js';
import { ipcSocketOf, logOf } from '../helpers/agent.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { OUTPOST_BIN, tempDir } from '../helpers/paths.js';
import { Child, type Finished, outpostEnv, READY, runOutpost, startRunningAgent } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';

const ROOT = process.geteuid?.() === 0;

/** What every refusal here must look like: one `outpost:` line on stderr, no stack trace, nothing on stdout. */
function assertOneLine(result: Finished): string {
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0] ?? '', /^outpost: /);
  assert.doesNotMatch(result.stderr, /internal error|\n\s+at |electron-log/);
  assert.equal(result.stdout, '');
  return lines[0] ?? '';
}

/**
 * A temporary folder in which paths can be made unwritable for this user. Root passes permission
 * bits, so as root a path is made immutable (`chattr +i`: EPERM even for root, on ext4 and the other
 * usual Linux file systems; a read-only bind mount would need more than a test should do); otherwise
 * mode 0500 (a folder) or 0400 (a file) is enough. The cleanup gives writes back before removing.
 */
function scratch(t: TestContext) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-badenv-'));
  const locked: string[] = [];
  t.after(() => {
    for (const target of locked.reverse()) {
      if (ROOT) spawnSync('chattr', ['-i', target]);
      else fs.chmodSync(target, 0o700);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    /** Returns false (and skips the test, saying why) where this user cannot be kept from writing. */
    refuseWrites(target: string): boolean {
      if (ROOT) {
        const result = spawnSync('chattr', ['+i', target], { encoding: 'utf8' });
        if (result.status !== 0) {
          t.skip(`chattr +i ${target} failed (${(result.stderr || result.error?.message || '').trim()}): nothing keeps root from writing here`);
          return false;
        }
      } else {
        fs.chmodSync(target, fs.statSync(target).isDirectory() ? 0o500 : 0o400);
      }
      locked.push(target);
      return true;
    },
  };
}

/** A storage folder as the agent makes it: 0700, owned by this user. */
function storageFolder(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  return dir;
}

const CANNOT_WRITE = ROOT ? /operation not permitted .*\(EPERM\)/ : /permission denied \(EACCES\)/;

test('an existing storage folder this user cannot write: exit 73, one line naming the folder and why; nothing written in it', async (t) => {
  const box = scratch(t);
  const home = storageFolder(path.join(box.dir, 'home'));
  if (!box.refuseWrites(home)) return;
  const result = await runOutpost(home);
  assert.equal(result.code, 73, result.stderr);
  const line = assertOneLine(result);
  assert.ok(line.includes(`The storage folder ${home} cannot be written: `), line);
  assert.match(line, CANNOT_WRITE);
  assert.deepEqual(fs.readdirSync(home), []);
});

test('a missing storage folder under a folder this user cannot write: exit 73 naming that folder and why, not just the errno', async (t) => {
  const box = scratch(t);
  const parent = storageFolder(path.join(box.dir, 'parent'));
  if (!box.refuseWrites(parent)) return;
  const home = path.join(parent, 'a', 'home');
  const result = await runOutpost(home);
  assert.equal(result.code, 73, result.stderr);
  const line = assertOneLine(result);
  assert.ok(line.includes(`Cannot create the storage folder ${home}: ${parent} cannot be written: `), line);
  assert.match(line, CANNOT_WRITE);
});

test('a storage path under a regular file (ENOTDIR, whoever runs it): exit 73 naming the file', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, '');
  const result = await runOutpost(path.join(file, 'home'));
  assert.equal(result.code, 73, result.stderr);
  assert.match(assertOneLine(result), new RegExp(`: ${file} is a file, not a folder\\.`));
});

test('a folder where the lock file belongs: exit 73, one line saying so; the folder is left alone', async (t) => {
  const home = tempDir(t);
  const lock = storagePaths(home).lock;
  fs.mkdirSync(lock);
  const result = await runOutpost(home);
  assert.equal(result.code, 73, result.stderr);
  assert.match(assertOneLine(result), new RegExp(`The lock ${lock} is a folder; no agent leaves one there\\. Remove it`));
  assert.ok(fs.statSync(lock).isDirectory(), 'not removed');
});

test('a folder where the IPC socket belongs: exit 73, one line saying so (not "replacing a stale socket"); the folder is left alone', async (t) => {
  const home = tempDir(t);
  const socket = ipcSocketOf(home);
  fs.mkdirSync(socket);
  const result = await runOutpost(home);
  assert.equal(result.code, 73, result.stderr);
  assert.match(assertOneLine(result), new RegExp(`The IPC endpoint ${socket} is a folder, not a socket`));
  assert.ok(fs.statSync(socket).isDirectory(), 'not removed');
});

test('a logs/ folder this user cannot write: exit 73 naming the log file, instead of running without a log', async (t) => {
  const box = scratch(t);
  const home = storageFolder(path.join(box.dir, 'home'));
  const logs = storageFolder(path.join(home, 'logs'));
  if (!box.refuseWrites(logs)) return;
  const result = await runOutpost(home, [], {}, 10_000);
  assert.equal(result.code, 73, result.stderr);
  const line = assertOneLine(result);
  assert.ok(line.includes(`Cannot write the log file ${path.join(logs, 'outpost.log')}: `), line);
  assert.match(line, CANNOT_WRITE);
});

test('a config.json that must be migrated but cannot be replaced: exit 73 naming the file; the file and folder as they were', { skip: !ROOT && 'only root can make a file that a rename cannot replace (chattr +i)' }, async (t) => {
  const box = scratch(t);
  const home = storageFolder(path.join(box.dir, 'home'));
  const config = path.join(home, 'config.json');
  const v1 = '{"config_version":1,"server_url":"http://127.0.0.1:9"}\n';
  fs.writeFileSync(config, v1, { mode: 0o600 });
  if (!box.refuseWrites(config)) return;
  const result = await runOutpost(home);
  assert.equal(result.code, 73, result.stderr);
  assert.match(assertOneLine(result), new RegExp(`${config}: cannot be written: operation not permitted .*\\(EPERM\\)\\. Nothing was changed\\.`));
  assert.equal(fs.readFileSync(config, 'utf8'), v1);
  assert.deepEqual(fs.readdirSync(home).filter((name) => name.startsWith('config.json')), ['config.json'], 'no backup, no temp file left');
});

for (const [kind, value] of [
  ['empty', ''],
  ['blank', ' \t'],
] as const) {
  test(`OUTPOST_HOME set but ${kind}: outpost and outpost status refuse with exit 78 in one line, and leave the default folder alone`, async (t) => {
    const state = tempDir(t);
    const extra = { XDG_STATE_HOME: state, HOME: state };
    const fallback = new LinuxPlatform(extra).defaultStorageDir(ROOT);
    const existed = fs.existsSync(fallback);
    for (const args of [[], ['status']]) {
      const result = await runOutpost(value, args, extra, 10_000);
      assert.equal(result.code, 78, `${args.join(' ')}: ${result.stderr}`);
      const line = assertOneLine(result);
      assert.ok(line.includes(`OUTPOST_HOME is set but ${kind}; set it to the storage folder to use, or unset it to use the default (${fallback}).`), line);
    }
    assert.equal(fs.existsSync(fallback), existed, 'the default storage folder was not created');
  });
}

test('a relative OUTPOST_HOME is taken from the working folder: the running line and status show the absolute path, the log says it was relative', async (t) => {
  const cwd = tempDir(t);
  const home = path.join(cwd, 'rel', 'home');
  const env = outpostEnv(path.join('rel', 'home'));
  const agent = new Child(process.execPath, [OUTPOST_BIN], env, cwd);
  t.after(() => agent.kill('SIGKILL'));
  await agent.waitFor(READY);
  assert.ok(agent.stderr.includes(`storage ${home})`), agent.stderr);
  const status = await new Child(process.execPath, [OUTPOST_BIN, 'status'], env, cwd).finish();
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).storage, home);
  assert.match(logOf(home), /storage_source="OUTPOST_HOME, relative to the working folder"/);
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
});

const SECRET = 'S3cr3t-Hunter2-0xDEADBEEF';

test('config.json linked to a secret file that is not JSON: exit 78 naming the file and the line and column; the secret in neither stderr nor the log', async (t) => {
  const home = tempDir(t);
  const elsewhere = tempDir(t);
  const shadow = path.join(elsewhere, 'shadow');
  const content = `root:$6$${SECRET}$x:19000:0:99999:7:::\n`;
  fs.writeFileSync(shadow, content);
  const config = path.join(home, 'config.json');
  fs.symlinkSync(shadow, config);
  const result = await runOutpost(home);
  assert.equal(result.code, 78, result.stderr);
  const line = assertOneLine(result);
  assert.ok(line.includes(`${config}: not valid JSON: unexpected character at line 1, column 1.`), line);
  assert.ok(!result.stderr.includes(SECRET) && !result.stderr.includes('root:'), 'no byte of the file on stderr');
  assert.ok(!logOf(home).includes(SECRET), 'nor in the log');
  assert.equal(fs.readFileSync(shadow, 'utf8'), content);
  assert.ok(fs.lstatSync(config).isSymbolicLink(), 'the link left alone');
});

test('config.json with a secret in values of the wrong type: exit 78 naming the schema path, the secret in neither stderr nor the log', async (t) => {
  const cases = [
    { doc: { ...DEFAULT_CONFIG, config_version: SECRET }, says: /config_version must be a whole number from 1 up, not a string\./ },
    { doc: { ...DEFAULT_CONFIG, log_level: SECRET, backend: { url: SECRET, ws_url: SECRET } }, says: /: log_level: .*\(and 2 more problems\)/ },
    { doc: { ...DEFAULT_CONFIG, update: { ...DEFAULT_CONFIG.update, channel: SECRET } }, says: /: update\.channel: must be lower-case letters/ },
  ];
  for (const { doc, says } of cases) {
    const home = tempDir(t);
    fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify(doc));
    const result = await runOutpost(home);
    assert.equal(result.code, 78, result.stderr);
    assert.match(assertOneLine(result), says);
    assert.ok(!result.stderr.includes(SECRET), result.stderr);
    assert.ok(!logOf(home).includes(SECRET));
  }
});

/**
 * Keeps `count` connections open to an endpoint, opening a new one for each that the far side
 * closes: a flood that never lets up.
 */
function holdConnections(endpoint: string, count: number) {
  const sockets = new Set<net.Socket>();
  let stopped = false;
  let closedByServer = 0;
  const open = () => {
    if (stopped) return;
    const socket = net.connect(endpoint);
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      if (stopped) return;
      closedByServer++;
      setImmediate(open);
    });
  };
  for (let i = 0; i < count; i++) open();
  return {
    get closedByServer() {
      return closedByServer;
    },
    stop() {
      stopped = true;
      for (const socket of sockets) socket.destroy();
    },
  };
}

test('a flood of connections held open on the IPC endpoint: status answers or exits 5, never 70 on EPIPE; the agent lives on', async (t) => {
  const home = tempDir(t);
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  const flood = holdConnections(ipcSocketOf(home), 200);
  t.after(() => flood.stop());
  await until('the agent to close flood connections to make room', () => flood.closedByServer > 100);

  const codes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const result = await runOutpost(home, ['status']);
    codes.push(result.code ?? -1);
    assert.ok(result.code === 0 || result.code === 5, `exit ${result.code}: ${result.stderr}`);
    if (result.code === 5) assert.match(assertOneLine(result), /did not answer "status" within 5000 ms .*the connection was dropped \d+ times/);
    assert.doesNotMatch(result.stderr, /EPIPE|internal error/);
  }
  t.diagnostic(`status exits during the flood: ${codes.join(', ')} (${flood.closedByServer} flood connections closed by the agent)`);
  flood.stop();

  const after = await runOutpost(home, ['status']);
  assert.equal(after.code, 0, after.stderr);
  assert.equal(JSON.parse(after.stdout).pid, agent.pid);
  assert.match(logOf(home), /IPC connection limit \(16\) reached/);
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
});

test('an endpoint that drops every connection: status retries until its 5 s deadline, then exits 5 saying so; without retries a drop is ERR_IPC_PROTOCOL at once', async (t) => {
  const home = tempDir(t);
  const dropper = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => dropper.listen(ipcSocketOf(home), resolve));
  t.after(() => dropper.close());
  let accepted = 0;
  dropper.on('connection', () => accepted++);

  const started = performance.now();
  const result = await runOutpost(home, ['status']);
  const elapsed = performance.now() - started;
  assert.equal(result.code, 5, result.stderr);
  const drops = Number(/the connection was dropped (\d+) times/.exec(assertOneLine(result))?.[1]);
  assert.ok(drops >= 10, `retried within the deadline (${drops} drops)`);
  assert.ok(accepted >= drops);
  assert.ok(elapsed >= 4_500 && elapsed < 9_000, `gave up at its deadline (${Math.round(elapsed)} ms)`);

  // The agent's own probe of the endpoint (IpcServer) does not retry: a peer that hangs up is a stranger.
  await assert.rejects(
    sendCommand({ endpoint: ipcSocketOf(home), secret: () => Buffer.alloc(32), command: 'status', timeoutMs: 5_000 }),
    (error) => isOutpostError(error, 'ERR_IPC_PROTOCOL'),
  );
});

test('an endpoint that drops three connections, then holds the fourth without a word: status exits 5 at its deadline, still saying the connection was dropped 3 times', async (t) => {
  const home = tempDir(t);
  const held: net.Socket[] = [];
  let accepted = 0;
  const server = net.createServer((socket) => {
    if (++accepted <= 3) socket.destroy();
    else held.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(ipcSocketOf(home), resolve));
  t.after(() => {
    for (const socket of held) socket.destroy();
    server.close();
  });

  const result = await runOutpost(home, ['status']);
  assert.equal(result.code, 5, result.stderr);
  assert.match(assertOneLine(result), /did not answer "status" within 5000 ms .*: the connection was dropped 3 times/);
  assert.equal(accepted, 4, 'no connection after the one held');
});

/** The job of an update whose updater never began (no journal): the follower only has to clean up. */
function unbegunJob(dir: string): UpdaterJob {
  const updates = path.join(dir, 'updates');
  return {
    job_id: 'job-0123456789',
    install_dir: path.join(dir, 'install'),
    staged_dir: path.join(updates, '2.0.0'),
    backup_dir: path.join(dir, 'backup'),
    old_pid: process.pid,
    old_version: '1.0.0',
    new_version: '2.0.0',
    launch: { command: process.execPath, args: [] },
    storage: dir,
    exit_timeout_ms: 1_000,
    health_timeout_ms: 1_000,
  };
}

/** The follower's ticks, driven by the test instead of a timer. */
function manualTicks(): { every: (ms: number, tick: () => void) => () => void; tick: () => void } {
  const ticks: (() => void)[] = [];
  return {
    every: (_ms, next) => {
      ticks.push(next);
      return () => undefined;
    },
    tick: () => {
      for (const tick of ticks) tick();
    },
  };
}

test('job follower: its folder removed under it, it finishes without an exception (nothing was left to remove)', (t) => {
  const dir = tempDir(t);
  const job = unbegunJob(dir);
  const log = memoryLogger();
  const follower = new JobFollower({ job, version: '1.0.0', platform: new LinuxPlatform(process.env), log, updater: undefined, report: async () => {}, intervalMs: 10 });
  t.after(() => follower.dispose());
  assert.equal(fs.existsSync(path.join(dir, 'updates')), false, 'updates/ is not there');
  assert.doesNotThrow(() => follower.start());
  assert.deepEqual(log.lines, []);
});

test('job follower: its folder unreadable (a file in its place, which stops root too): logged once over ten ticks, retried, finished once readable', (t) => {
  const dir = tempDir(t);
  const job = unbegunJob(dir);
  const updates = path.join(dir, 'updates');
  fs.writeFileSync(updates, 'not a folder');
  const log = memoryLogger();
  const reports: string[] = [];
  const ticks = manualTicks();
  const follower = new JobFollower({ job, version: '1.0.0', platform: new LinuxPlatform(process.env), log, updater: undefined, report: async (code) => void reports.push(code), intervalMs: 10, every: ticks.every });
  t.after(() => follower.dispose());

  assert.doesNotThrow(() => follower.start());
  for (let i = 0; i < 10; i++) assert.doesNotThrow(() => ticks.tick());
  const warnings = log.lines.filter((l) => l.startsWith('warn'));
  assert.equal(warnings.length, 1, log.lines.join('\n'));
  assert.match(warnings[0] ?? '', /cannot follow update job job-0123456789 \(trying again every 10 ms\): a part of the path is a file, not a folder \(ENOTDIR\)/);

  fs.rmSync(updates);
  fs.mkdirSync(updates);
  const files = storagePaths(dir).updates;
  const readyFile = files.readyFile(job.job_id);
  const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
  fs.writeFileSync(readyFile, JSON.stringify({ pid: dead, start_time: null }));
  const earlier = files.journal('older-job');
  fs.writeFileSync(earlier, '');
  ticks.tick();
  assert.equal(fs.existsSync(readyFile), false, 'the dead updater\'s ready file is removed');
  assert.equal(fs.existsSync(earlier), false, 'an earlier journal is removed');
  assert.ok(log.lines.some((l) => /following update job job-0123456789 works again/.test(l)));
  assert.deepEqual(reports, [], 'an update that never began is not reported');
});
