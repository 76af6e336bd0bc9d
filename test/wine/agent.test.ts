/**
 * The win32 backends for real: Windows Node 24 under Wine runs the compiled agent. Wine is faithful
 * for the environment, files, processes and ffi-rs calls; not for ACLs or elevation, which
 * test/unit/win32-platform.test.ts covers by the exact command lines (ENVIRONMENT.md).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { RUNNING_LINE } from '../../app/common/cli-output.js';
import { CURRENT_CONFIG_VERSION } from '../../app/main/core/config-schema.js';
import { tempDir } from '../helpers/paths.js';
import { runWindowsNode, spawnWindowsNode, stopWine, toWindowsPath } from './harness.js';
import { wineOrSkip } from './tier.js';

const READY = RUNNING_LINE;

test('wine tier: the outpost command and the win32 backends under Windows Node', { timeout: 10 * 60_000 }, async (t) => {
  const wine = await wineOrSkip(t);
  if (!wine) return;
  t.after(() => stopWine(wine));
  const outpost = toWindowsPath(path.join(wine.repoRoot, 'bin', 'outpost.js'));

  await t.test('wine tier: --version and a usage error (64)', async () => {
    const version = await runWindowsNode(wine, [outpost, '--version']);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\r?\n$/);
    const usage = await runWindowsNode(wine, [outpost, '--nope']);
    assert.equal(usage.code, 64);
    assert.match(usage.stderr, /Usage:/);
  });

  await t.test('wine tier: storage folders from the real Windows environment; the admin check through ffi-rs answers', async () => {
    const platformModule = toWindowsPath(path.join(wine.repoRoot, 'dist', 'app', 'main', 'platform', 'index.js'));
    const script = `const { createPlatform } = await import('file:///' + ${JSON.stringify(platformModule)}.replaceAll('\\\\', '/'));
      const p = createPlatform();
      console.log(JSON.stringify({ name: p.name, elevated: p.isElevated(), machine: p.defaultStorageDir(true), user: p.defaultStorageDir(false),
        env: { LOCALAPPDATA: process.env.LOCALAPPDATA, ProgramData: process.env.ProgramData } }));`;
    const result = await runWindowsNode(wine, ['--input-type=module', '-e', script]);
    assert.equal(result.code, 0, result.stderr);
    const seen = JSON.parse(result.stdout);
    assert.equal(seen.name, 'win32');
    assert.equal(typeof seen.elevated, 'boolean', 'CheckTokenMembership answered (Wine runs everyone as admin: its value is not faithful)');
    assert.match(seen.env.LOCALAPPDATA, /^C:\\users\\[^\\]+\\AppData\\Local$/i);
    assert.equal(seen.user, `${seen.env.LOCALAPPDATA}\\Outpost`);
    assert.equal(seen.machine, `${seen.env.ProgramData}\\Outpost`);
  });

  await t.test('wine tier: a second Windows instance exits 2 naming the first; after a hard kill a new one takes over', async (t) => {
    const home = toWindowsPath(tempDir(t));
    const env = { OUTPOST_HOME: home };
    const first = spawnWindowsNode(wine, [outpost], { env });
    try {
      const [, firstPid] = await first.waitForLine(READY, { stream: 'stderr', timeoutMs: 60_000 });
      const second = await runWindowsNode(wine, [outpost], { env });
      assert.equal(second.code, 2, second.stderr);
      assert.match(second.stderr, new RegExp(`Another Outpost is running \\(pid ${firstPid},`));
    } finally {
      await first.kill();
    }
    const third = spawnWindowsNode(wine, [outpost], { env });
    try {
      const [, thirdPid] = await third.waitForLine(READY, { stream: 'stderr', timeoutMs: 60_000 });
      const record = JSON.parse(fs.readFileSync(path.join(tempDirOf(home), 'agent.lock'), 'utf8'));
      assert.equal(record.pid, Number(thirdPid));
      assert.match(record.start_time, /^\d{4}-\d\d-\d\dT/, 'the start time came from GetProcessTimes');
      const log = fs.readFileSync(path.join(tempDirOf(home), 'logs', 'outpost.log'), 'utf8');
      assert.match(log, /lock is stale: (its holder, pid \d+, is gone|pid \d+ now belongs to another process)/);
    } finally {
      await third.kill();
    }
  });

  await t.test('wine tier: status and --force between two Windows processes over the named pipe', async (t) => {
    const home = toWindowsPath(tempDir(t));
    const env = { OUTPOST_HOME: home };
    const first = spawnWindowsNode(wine, [outpost], { env });
    let second: ReturnType<typeof spawnWindowsNode> | undefined;
    try {
      const [, firstPid] = await first.waitForLine(READY, { stream: 'stderr', timeoutMs: 60_000 });
      const status = await runWindowsNode(wine, [outpost, 'status'], { env });
      assert.equal(status.code, 0, status.stderr);
      const seen = JSON.parse(status.stdout);
      assert.equal(seen.pid, Number(firstPid));
      assert.equal(seen.state, 'IDLE');
      assert.equal(seen.storage.toLowerCase(), home.toLowerCase());
      const log = () => fs.readFileSync(path.join(tempDirOf(home), 'logs', 'outpost.log'), 'utf8');
      assert.match(log(), /IPC endpoint listening endpoint="\\\\\\\\.\\\\pipe\\\\outpost-[0-9a-f]{16}"/, 'a named pipe, not a socket file');
      assert.equal(fs.existsSync(path.join(tempDirOf(home), 'ipc.sock')), false);

      second = spawnWindowsNode(wine, [outpost, '--force'], { env });
      const [, secondPid] = await second.waitForLine(READY, { stream: 'stderr', timeoutMs: 60_000 });
      const firstDone = await first.waitForExit(30_000);
      assert.equal(firstDone.code, 0, firstDone.stderr);
      assert.match(firstDone.stderr, new RegExp(`stopped \\(force restart requested by pid ${secondPid}\\)`));
      const after = await runWindowsNode(wine, [outpost, 'status'], { env });
      assert.equal(after.code, 0, after.stderr);
      assert.equal(JSON.parse(after.stdout).pid, Number(secondPid));
    } finally {
      await first.kill();
      await second?.kill();
    }
    const none = await runWindowsNode(wine, [outpost, 'status'], { env });
    assert.equal(none.code, 1, 'no agent: status exits 1');
  });

  await t.test('wine tier: the diagnostics view over the named pipe, a reply of a quarter megabyte, read by a Windows client', async (t) => {
    const home = toWindowsPath(tempDir(t));
    const env = { OUTPOST_HOME: home };
    // A log of 300 long lines before the start: the first read carries its tail, far more than one pipe buffer.
    const logs = path.join(tempDirOf(home), 'logs');
    fs.mkdirSync(logs, { recursive: true });
    const filler = Array.from({ length: 300 }, (_, n) => `[2026-12-01T10:00:00.000Z] [info] filler ${n} ${'x'.repeat(800)}\n`).join('');
    fs.writeFileSync(path.join(logs, 'outpost.log'), filler);
    const agent = spawnWindowsNode(wine, [outpost], { env });
    try {
      const [, pid] = await agent.waitForLine(READY, { stream: 'stderr', timeoutMs: 60_000 });
      const module = (name: string) => JSON.stringify(toWindowsPath(path.join(wine.repoRoot, 'dist', 'app', 'main', ...name.split('/'))));
      const script = `const load = (file) => import('file:///' + file.replaceAll('\\\\', '/'));
        const { createPlatform } = await load(${module('platform/index.js')});
        const { AgentClient } = await load(${module('core/agent-client.js')});
        const { AgentOverIpc } = await load(${module('core/diagnostics/agent-over-ipc.js')});
        const view = await new AgentOverIpc(new AgentClient(createPlatform(), process.env)).read({ log_after: null });
        console.log(JSON.stringify({ pid: view.agent.pid, shell: view.agent.shell, lines: view.log.lines.length, bytes: JSON.stringify(view).length, fillers: view.log.lines.filter((l) => l.text.startsWith('filler')).length }));`;
      const read = await runWindowsNode(wine, ['--input-type=module', '-e', script], { env });
      assert.equal(read.code, 0, read.stderr);
      const seen = JSON.parse(read.stdout);
      assert.equal(seen.pid, Number(pid));
      assert.equal(seen.shell, 'headless');
      assert.equal(seen.lines, 300, 'the last 300 lines');
      assert.ok(seen.fillers > 250, `${seen.fillers} of the filler lines came through`);
      assert.ok(seen.bytes > 200_000, `a reply of ${seen.bytes} bytes`);
    } finally {
      await agent.kill();
    }
  });

  await t.test('wine tier: start at login is the Run value, HKLM (Wine runs as admin) and HKCU, written, read back and removed through reg.exe', async (t) => {
    const home = toWindowsPath(tempDir(t));
    const env = { OUTPOST_HOME: home };
    // What a Windows admin would look at, read with reg.exe directly (not through the product).
    const runValue = async (hive: 'HKLM' | 'HKCU') => {
      const script = `const { spawnSync } = await import('node:child_process');
        const r = spawnSync('reg', ['query', '${hive}\\\\Software\\\\Microsoft\\\\Windows\\\\CurrentVersion\\\\Run', '/v', 'Outpost', '/reg:64'], { encoding: 'utf8' });
        console.log(JSON.stringify({ status: r.status, stdout: r.stdout }));`;
      const result = await runWindowsNode(wine, ['--input-type=module', '-e', script]);
      assert.equal(result.code, 0, result.stderr);
      const seen = JSON.parse(result.stdout) as { status: number; stdout: string };
      return seen.status === 0 ? /Outpost\s+REG_SZ\s+(.*)/.exec(seen.stdout)?.[1]?.trim() : null;
    };
    const enabled = await runWindowsNode(wine, [outpost, '--enable-autostart'], { env });
    assert.equal(enabled.code, 0, enabled.stderr);
    assert.match(enabled.stdout, /^autostart enabled for every user of this machine: HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Outpost starts /);
    const data = await runValue('HKLM');
    assert.ok(data?.includes('outpost.js'), `the Run value names the program: ${data}`);
    const again = await runWindowsNode(wine, [outpost, '--enable-autostart'], { env });
    assert.match(again.stdout, /^autostart was already enabled for every user of this machine/);
    const disabled = await runWindowsNode(wine, [outpost, '--disable-autostart'], { env });
    assert.match(disabled.stdout, /^autostart disabled for every user of this machine: removed HKLM\\/);
    assert.equal(await runValue('HKLM'), null, 'gone');
    const twice = await runWindowsNode(wine, [outpost, '--disable-autostart'], { env });
    assert.match(twice.stdout, /^autostart was not enabled for every user of this machine/);

    // This user's entry, through the same code (a non-elevated install; Wine cannot run one).
    const module = (name: string) => JSON.stringify(toWindowsPath(path.join(wine.repoRoot, 'dist', 'app', 'main', 'platform', name)));
    const script = `const load = (file) => import('file:///' + file.replaceAll('\\\\', '/'));
      const { createPlatform } = await load(${module('index.js')});
      const { enableAutostart, disableAutostart } = await load(${module('autostart.js')});
      const store = createPlatform().autostart(false);
      const login = { command: 'C:\\\\Program Files\\\\Outpost\\\\Outpost.exe', args: [] };
      console.log(JSON.stringify({ location: store.location, first: enableAutostart(store, login), second: enableAutostart(store, login), read: store.read() }));`;
    const user = await runWindowsNode(wine, ['--input-type=module', '-e', script]);
    assert.equal(user.code, 0, user.stderr);
    const seen = JSON.parse(user.stdout);
    assert.deepEqual(seen, { location: 'HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Outpost', first: 'created', second: 'unchanged', read: '"C:\\Program Files\\Outpost\\Outpost.exe"' });
    assert.equal(await runValue('HKCU'), '"C:\\Program Files\\Outpost\\Outpost.exe"', 'quoted: a path with a space');
    const removeScript = script.replace(/console\.log[\s\S]*$/, 'console.log(JSON.stringify([disableAutostart(store), disableAutostart(store)]));');
    const removed = await runWindowsNode(wine, ['--input-type=module', '-e', removeScript]);
    assert.deepEqual(JSON.parse(removed.stdout), ['removed', 'absent']);
    assert.equal(await runValue('HKCU'), null);
  });

  await t.test('wine tier: with no OUTPOST_HOME the agent uses %ProgramData%\\Outpost (admin under Wine)', async () => {
    const machineDir = path.join(wine.prefix, 'drive_c', 'ProgramData', 'Outpost');
    fs.rmSync(machineDir, { recursive: true, force: true });
    const agent = spawnWindowsNode(wine, [outpost]);
    try {
      await agent.waitForLine(READY, { stream: 'stderr', timeoutMs: 60_000 });
      const config = JSON.parse(fs.readFileSync(path.join(machineDir, 'config.json'), 'utf8'));
      assert.equal(config.config_version, CURRENT_CONFIG_VERSION);
      assert.ok(fs.existsSync(path.join(machineDir, 'agent.lock')));
    } finally {
      await agent.kill();
      fs.rmSync(machineDir, { recursive: true, force: true });
    }
  });
});

/** Z:\tmp\x -> /tmp/x */
function tempDirOf(windowsPath: string): string {
  return windowsPath.replace(/^Z:/, '').replaceAll('\\', '/');
}
