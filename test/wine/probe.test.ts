/**
 * Proves the wine harness: Windows Node under Wine sees the env we pass, loads ffi-rs, two Windows
 * Node processes talk over a named pipe, and app/main/platform/win32-native.ts works on Windows.
 * Skips when Wine is not installed, unless OUTPOST_REQUIRE_ALL_TIERS=1 (then it fails).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  createWellKnownSidArgs,
  filetimeToIso,
  isoToFiletime,
  openProcessArgs,
  processCreationTime,
  WIN32_CALLS,
} from '../../app/main/platform/win32-native.js';
import { runWindowsNode, spawnWindowsNode, stopWine, toWindowsPath } from './harness.js';
import { wineOrSkip } from './tier.js';

test('wine tier: the admin check and process times build the documented Win32 arguments (elevation is not faithful under Wine: arguments checked on any OS)', () => {
  assert.deepEqual(WIN32_CALLS.CreateWellKnownSid, { dll: 'advapi32.dll', ret: 'I32', params: ['I32', 'I64', 'U8Array', 'U8Array'] });
  assert.deepEqual(WIN32_CALLS.CheckTokenMembership, { dll: 'advapi32.dll', ret: 'I32', params: ['I64', 'U8Array', 'U8Array'] });
  const [type, domainSid, sid, size] = createWellKnownSidArgs();
  assert.equal(type, 26); // WinBuiltinAdministratorsSid
  assert.equal(domainSid, 0); // NULL
  assert.equal(sid.length, 68); // SECURITY_MAX_SID_SIZE
  assert.equal(size.readUInt32LE(0), 68);
  assert.deepEqual(openProcessArgs(1234), [0x1000, 0, 1234]); // PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid
  // FILETIME <-> ISO keeps every 100 ns tick.
  const ft = 134_087_853_421_234_567n;
  const iso = filetimeToIso(ft);
  assert.match(iso, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/);
  assert.equal(isoToFiletime(iso), ft);
  assert.notEqual(filetimeToIso(ft + 1n), iso);
  assert.equal(filetimeToIso(116_444_736_000_000_000n), '1970-01-01T00:00:00.0000000Z');
  assert.equal(Date.parse(iso), Number((ft - 116_444_736_000_000_000n) / 10_000n));
  if (process.platform !== 'win32') {
    assert.throws(() => processCreationTime(process.pid), { code: 'ERR_PLATFORM_CALL' });
  }
});

test('wine tier: Windows Node under Wine', { timeout: 10 * 60_000 }, async (t) => {
  const wine = await wineOrSkip(t);
  if (!wine) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-probe-'));
  t.after(async () => {
    await stopWine(wine);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const script = (name: string, body: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, body);
    return toWindowsPath(file);
  };

  await t.test('wine tier: platform, Node version, env and ffi-rs', async () => {
    const probe = script(
      'probe.cjs',
      `const ffi = require('ffi-rs');
       ffi.open({ library: 'kernel32', path: 'kernel32.dll' });
       const pid = ffi.load({ library: 'kernel32', funcName: 'GetCurrentProcessId', retType: ffi.DataType.U32, paramsType: [], paramsValue: [] });
       console.log(JSON.stringify({ platform: process.platform, node: process.versions.node, home: process.env.OUTPOST_HOME, pid, nodePid: process.pid, cwd: process.cwd() }));
       process.exitCode = 7;`,
    );
    const result = await runWindowsNode(wine, [probe], { env: { OUTPOST_HOME: 'C:\\outpost-home' }, cwd: dir });
    assert.equal(result.code, 7, result.stderr);
    const seen = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.equal(seen.platform, 'win32');
    assert.equal(seen.node, process.versions.node, 'Windows Node must be the same version as the Linux Node running the tests');
    assert.equal(seen.home, 'C:\\outpost-home');
    assert.equal(seen.pid, seen.nodePid, 'ffi-rs called GetCurrentProcessId in kernel32');
    assert.equal(seen.cwd, toWindowsPath(dir));
  });

  await t.test('wine tier: two Windows Node processes over a named pipe', async () => {
    const pipe = `\\\\.\\pipe\\outpost-probe-${randomBytes(6).toString('hex')}`;
    const server = spawnWindowsNode(wine, [
      script(
        'server.cjs',
        `const net = require('net');
         const server = net.createServer((socket) => {
           socket.setEncoding('utf8');
           socket.once('data', (line) => {
             console.log('got ' + line.trim());
             socket.end('pong from ' + process.pid + '\\n', () => server.close());
           });
         });
         server.listen(process.argv[2], () => console.log('listening ' + process.pid));`,
      ),
      pipe,
    ]);
    try {
      const [, serverPid] = await server.waitForLine(/^listening (\d+)$/, { timeoutMs: 30_000 });
      const client = await runWindowsNode(wine, [
        script(
          'client.cjs',
          `const net = require('net');
           const socket = net.connect(process.argv[2], () => socket.write('ping from ' + process.pid + '\\n'));
           socket.setEncoding('utf8');
           socket.on('data', (reply) => process.stdout.write(reply));
           socket.on('error', (error) => { console.error(error.code); process.exitCode = 1; });`,
        ),
        pipe,
      ]);
      assert.equal(client.code, 0, client.stderr);
      assert.equal(client.stdout.trim(), `pong from ${serverPid}`);
      const exit = await server.waitForExit(30_000);
      assert.equal(exit.code, 0, exit.stderr);
      assert.match(exit.stdout, /^got ping from \d+$/m);
      // A pipe nobody listens on: ENOENT, as on Windows.
      const missing = await runWindowsNode(wine, [script('missing.cjs', `require('net').connect(process.argv[2]).on('error', (e) => console.log(e.code));`), `${pipe}-none`]);
      assert.equal(missing.stdout.trim(), 'ENOENT');
    } finally {
      await server.kill();
    }
  });

  await t.test('wine tier: win32-native isUserAdmin and processCreationTime', async () => {
    const modulePath = path.join(wine.repoRoot, 'dist', 'app', 'main', 'platform', 'win32-native.js');
    assert.ok(fs.existsSync(modulePath), `${modulePath} is missing: compile first (npx tsc -p tsconfig.json)`);
    const other = spawnWindowsNode(wine, ['-e', "console.log('pid ' + process.pid); setInterval(() => {}, 1000);"]);
    try {
      const [, otherPid] = await other.waitForLine(/^pid (\d+)$/);
      const check = script(
        'native.mjs',
        `import { pathToFileURL } from 'node:url';
         const native = await import(pathToFileURL(process.argv[2]).href);
         const [otherPid, missingPid] = process.argv.slice(3).map(Number);
         const result = {
           admin: native.isUserAdmin(),
           self1: native.processCreationTime(process.pid),
           self2: native.processCreationTime(process.pid),
           other: native.processCreationTime(otherPid),
           missing: native.processCreationTime(missingPid),
           now: Date.now(),
         };
         console.log(JSON.stringify(result));`,
      );
      const missingPid = 0x7ffffff0;
      const run = await runWindowsNode(wine, [check, toWindowsPath(modulePath), String(otherPid), String(missingPid)]);
      assert.equal(run.code, 0, run.stderr);
      const seen = JSON.parse(run.stdout) as { admin: unknown; self1: string; self2: string; other: string; missing: unknown; now: number };
      assert.equal(typeof seen.admin, 'boolean');
      assert.equal(seen.admin, true, 'Wine runs everything as admin');
      assert.match(seen.self1, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/);
      assert.equal(seen.self1, seen.self2, 'same process, same creation time');
      assert.notEqual(seen.other, seen.self1, 'another process, another creation time');
      assert.ok(Date.parse(seen.other) < Date.parse(seen.self1), 'the other process was started first');
      assert.ok(Math.abs(seen.now - Date.parse(seen.self1)) < 120_000, `creation time ${seen.self1} is not about now`);
      assert.equal(seen.missing, null, 'no such process');

      // Once the other process is gone, its pid yields null.
      await other.kill();
      const after = await runWindowsNode(wine, [
        script('after.mjs', `import { pathToFileURL } from 'node:url'; const n = await import(pathToFileURL(process.argv[2]).href); console.log(JSON.stringify([process.pid, n.processCreationTime(Number(process.argv[3]))]));`),
        toWindowsPath(modulePath),
        String(otherPid),
      ]);
      assert.equal(after.code, 0, after.stderr);
      const [afterPid, afterTime] = JSON.parse(after.stdout) as [number, string | null];
      if (afterPid !== Number(otherPid)) assert.equal(afterTime, null, 'an exited process has no creation time');
    } finally {
      await other.kill();
    }
  });
});
