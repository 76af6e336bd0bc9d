/**
 * Held files under Wine: Windows Node processes hold files of a tree (a plain open, an exclusive open,
 * a loaded DLL), and another runs the compiled win32 backend's findHeldFiles on it. Wine is faithful for
 * sharing violations and loaded images, not for renaming a folder with open files (it allows it), which
 * is why the updater asks file by file.
 *
 * Wine 8's Restart Manager names nobody. Evidence, from WINEDEBUG=fixme+all around a session on a file
 * another process holds: "fixme:rstrtmgr:RmStartSession ... stub!" (the session handle it gives is
 * 0xdeadbeef), "fixme:rstrtmgr:RmRegisterResources -559038737, 1, ... stub!", "fixme:rstrtmgr:RmGetList
 * ... stub!" returning ERROR_SUCCESS with no process. So the real Restart Manager's answer is asserted to
 * be [], and the calls' marshalling is checked against a stand-in rstrtmgr.dll (stand-in-rstrtmgr.c,
 * built here with mingw) that echoes what it receives.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import type { HeldFile } from '../../app/main/platform/platform.js';
import { UV_FS_O_EXLOCK } from '../../app/main/platform/win32-held-files.js';
import { tempDir } from '../helpers/paths.js';
import { tierUnavailable } from '../helpers/tiers.js';
import { runWindowsNode, spawnWindowsNode, stopWine, toWindowsPath, WINE_APT_INSTALL } from './harness.js';
import { wineOrSkip } from './tier.js';

const MINGW_GCC = 'x86_64-w64-mingw32-gcc';

/** Runs in Windows Node: findHeldFiles as the request file says, printed as JSON. */
const FIND_SCRIPT = `
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const load = (name) => import(pathToFileURL(request.platformDir + '\\\\' + name + '.js').href);
const { createPlatform } = await load('index');
const { findHeldFilesWin32 } = await load('win32-held-files');
const { processesHolding } = await load('win32-restart-manager');
const started = performance.now();
const held = request.standIn
  ? findHeldFilesWin32(request.tree, request.limit, { holdersOf: (files) => processesHolding(files, request.standIn) })
  : createPlatform('win32').findHeldFiles(request.tree, request.limit);
const ms = performance.now() - started;
// The system's Restart Manager, asked directly: an error would show here, where findHeldFiles hides it.
const system = request.askSystem ? processesHolding(held.map((file) => file.path)) : null;
console.log(JSON.stringify({ held, ms, system }));
`;

/** Runs in Windows Node: opens files plainly, exclusively, loads DLLs, and waits to be killed. */
const HOLD_SCRIPT = `
const fs = require('fs');
const ffi = require('ffi-rs');
const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
for (const file of request.plain ?? []) fs.openSync(file, 'r');
for (const file of request.exclusive ?? []) fs.openSync(file, fs.constants.O_RDONLY | request.exlock);
for (const [i, dll] of (request.dlls ?? []).entries()) ffi.open({ library: 'held' + i, path: dll });
console.log('holding ' + process.pid);
setInterval(() => {}, 1000);
`;

interface Found {
  held: HeldFile[];
  ms: number;
  system: unknown;
}

test('wine tier: held files found by exclusive opens, holders asked of the Restart Manager', { timeout: 10 * 60_000 }, async (t) => {
  const wine = await wineOrSkip(t);
  if (!wine) return;
  const gcc = (process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, MINGW_GCC)).find((candidate) => fs.existsSync(candidate));
  if (!gcc) {
    tierUnavailable(t, 'wine', `${MINGW_GCC} not found on PATH (the stand-in Restart Manager is compiled with it)`, WINE_APT_INSTALL);
    return;
  }
  t.after(() => stopWine(wine));
  const work = tempDir(t, 'outpost-held-wine-');
  const standIn = path.join(work, 'stand-in', 'rstrtmgr.dll');
  fs.mkdirSync(path.dirname(standIn));
  execFileSync(gcc, ['-shared', '-O2', '-s', '-o', standIn, path.join(wine.repoRoot, 'test', 'wine', 'stand-in-rstrtmgr.c')]);
  const platformDir = toWindowsPath(path.join(wine.repoRoot, 'dist', 'app', 'main', 'platform'));
  assert.ok(fs.existsSync(path.join(wine.repoRoot, 'dist', 'app', 'main', 'platform', 'win32-held-files.js')), 'compile first (npx tsc -p tsconfig.json)');
  let requests = 0;
  const file = (name: string, content: string) => {
    const full = path.join(work, name);
    fs.writeFileSync(full, content);
    return toWindowsPath(full);
  };
  const findScript = file('find.mjs', FIND_SCRIPT);
  const holdScript = file('hold.cjs', HOLD_SCRIPT);
  const find = async (request: { tree: string; limit?: number; standIn?: string; askSystem?: boolean }): Promise<Found> => {
    const result = await runWindowsNode(wine, [findScript, file(`find-${++requests}.json`, JSON.stringify({ platformDir, ...request }))]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as Found;
  };
  const hold = async (request: { plain?: string[]; exclusive?: string[]; dlls?: string[] }) => {
    const holder = spawnWindowsNode(wine, [holdScript, file(`hold-${++requests}.json`, JSON.stringify({ exlock: UV_FS_O_EXLOCK, ...request }))]);
    const [, pid] = await holder.waitForLine(/^holding (\d+)$/);
    return { holder, pid: Number(pid) };
  };
  const paths = (found: Found) => found.held.map((held) => held.path).sort();

  await t.test('wine tier: a file open plainly, one open exclusively and a loaded DLL are found, nothing else; links are not followed', async (t) => {
    const root = makeTree(t, ['a.txt', 'free.txt', 'sub/b.txt', 'sub/free.txt', 'bin/addon.dll']);
    fs.copyFileSync(standIn, path.join(root, 'bin', 'addon.dll')); // any DLL: it is loaded, not called
    const outside = makeTree(t, ['outside.txt']);
    fs.symlinkSync(outside, path.join(root, 'linked'));
    const w = (name: string) => toWindowsPath(path.join(root, name));
    const { holder } = await hold({
      plain: [w('a.txt'), toWindowsPath(path.join(outside, 'outside.txt'))],
      exclusive: [w('sub/b.txt')],
      dlls: [w('bin/addon.dll')],
    });
    try {
      const found = await find({ tree: toWindowsPath(root), askSystem: true });
      assert.deepEqual(paths(found), [w('a.txt'), w('bin/addon.dll'), w('sub/b.txt')].sort());
      // Wine's Restart Manager is a stub (see the top of this file): no holders, and no error either.
      for (const held of found.held) assert.deepEqual(held.holders, [], held.path);
      assert.deepEqual(found.system, []);

      // The stand-in answers: one session per file (at most 5 held), each naming exactly its file as
      // it arrived through the LPCWSTR array, and the count-0-first RmGetList protocol worked.
      const echoed = await find({ tree: toWindowsPath(root), standIn: toWindowsPath(standIn) });
      assert.deepEqual(paths(echoed), paths(found));
      for (const held of echoed.held) assert.deepEqual(held.holders, [{ pid: 1000, name: held.path }]);

      const limited = await find({ tree: toWindowsPath(root), limit: 2 });
      assert.equal(limited.held.length, 2);
    } finally {
      await holder.kill();
    }
    const after = await find({ tree: toWindowsPath(root) });
    assert.deepEqual(after.held, [], 'closed files are not held');
  });

  await t.test('wine tier: with more than 5 held files, one session names the holders of them all (stand-in)', async (t) => {
    const names = ['1', '2', '3', '4', '5', '6', '7'].map((n) => `dir${n}/f${n}.txt`);
    const root = makeTree(t, [...names, 'free.txt']);
    const held = names.map((name) => toWindowsPath(path.join(root, name)));
    const { holder } = await hold({ plain: held.slice(0, 4), exclusive: held.slice(4) });
    try {
      const found = await find({ tree: toWindowsPath(root), standIn: toWindowsPath(standIn) });
      assert.deepEqual(paths(found), [...held].sort());
      const [first] = found.held;
      assert.ok(first);
      // Registered in walk order: holder i echoes file i; every second one is the stand-in's service.
      assert.deepEqual(
        first.holders,
        found.held.map((file, i) => ({ pid: 1000 + i, name: i % 2 ? 'svc' : file.path })),
      );
      for (const file of found.held) assert.deepEqual(file.holders, first.holders, 'every file gets the combined list');
    } finally {
      await holder.kill();
    }
  });

  await t.test('wine tier: time findHeldFiles over 1,000 small files, none held', async (t) => {
    const root = makeTree(t, Array.from({ length: 1000 }, (_, i) => `d${i % 10}/f${i}.txt`));
    const found = await find({ tree: toWindowsPath(root) });
    assert.deepEqual(found.held, []);
    t.diagnostic(`findHeldFiles over 1,000 files under Wine: ${Math.round(found.ms)} ms`);
  });
});

/** A fresh folder holding these files (relative paths, / separated), each containing its own name. */
function makeTree(t: TestContext, files: readonly string[]): string {
  const root = tempDir(t, 'outpost-held-tree-');
  for (const name of files) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), name);
  }
  return root;
}
