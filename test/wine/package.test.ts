/**
 * `npm run dist` for real, around the STAND-IN Electron (test/helpers/stand-in-electron.ts): the
 * packaged app and both installers are built and checked, the fuses read back from the packaged
 * executable are the ones asked for, and the checks catch a package whose fuses or app.asar were
 * changed after the build. The packaged program then runs under Wine as the built version.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { checkPackagedApp, EXPECTED_FILES } from '../../tools/dist/checks.js';
import { ELECTRON_FUSES, readFuses } from '../../tools/dist/fuses.js';
import { REPO_ROOT, tempDir } from '../helpers/paths.js';
import { standInElectron } from '../helpers/stand-in-electron.js';
import { runWindowsProgram, stopWine } from './harness.js';
import { wineOrSkip } from './tier.js';

const VERSION = '3.4.5';

test('wine tier: npm run dist builds the packaged app and both installers, checked, with the fuses asked for', { timeout: 15 * 60_000 }, async (t) => {
  const wine = await wineOrSkip(t);
  if (!wine) return;
  t.after(() => stopWine(wine));
  const out = path.join(tempDir(t, 'outpost-dist-'), 'release');
  const keys = tempDir(t, 'outpost-dist-keys-');
  fs.writeFileSync(path.join(keys, 'root.json'), '{"signed":{"_type":"root"},"signatures":[]}\n');

  // A trust root that is not one is refused before anything is built: a package that trusted it could never update.
  fs.writeFileSync(path.join(keys, 'not-a-root.json'), '{"signed":{"_type":"targets"}}\n');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'earlier-build.txt'), 'kept');
  const refused = await runDist(['--electron-dist', await standInElectron(), '--out', out, '--trust-root', path.join(keys, 'not-a-root.json')], VERSION);
  assert.equal(refused.code, 1, refused.output);
  assert.match(refused.output, /dist: --trust-root .*not-a-root\.json is not a TUF root \(the root\.json that outpost-release keygen writes\)\n/);
  assert.deepEqual(fs.readdirSync(out), ['earlier-build.txt'], 'nothing built, and the earlier outputs not removed');

  const started = Date.now();
  const dist = await runDist(['--electron-dist', await standInElectron(), '--out', out, '--fast', '--trust-root', path.join(keys, 'root.json'), '--backend', 'https://updates.example.org'], VERSION);
  t.diagnostic(`npm run dist in ${Date.now() - started} ms`);
  assert.equal(dist.code, 0, dist.output);
  assert.match(dist.output, /dist: checked: 64-bit executables, expected files, fuses, asar integrity\n/);
  assert.match(dist.output, new RegExp(`dist: Outpost ${VERSION} for win32-x64: installed size [\\d.]+ MiB, of which the updater [\\d.]+ MiB \\(\\d+%\\)\\n`));
  for (const name of [`Outpost-Setup-${VERSION}.exe`, `Outpost-Setup-${VERSION}-inno.exe`]) {
    assert.ok(fs.statSync(path.join(out, name)).size > 50 * 1024 * 1024, `${name} holds the app`);
    assert.match(dist.output, new RegExp(`${name.replaceAll('.', '\\.')}\\s+[\\d.]+ MiB`));
  }
  const app = path.join(out, 'win-unpacked');
  for (const name of EXPECTED_FILES) assert.ok(fs.existsSync(path.join(app, name)), name);
  assert.equal(fs.readFileSync(path.join(app, 'resources', 'trust', 'root.json'), 'utf8'), fs.readFileSync(path.join(keys, 'root.json'), 'utf8'));
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(app, 'resources', 'organisation.json'), 'utf8')), {
    backend: { url: 'https://updates.example.org', ws_url: 'wss://updates.example.org/ws' },
  });
  assert.equal(fs.existsSync(path.join(out, 'build')), false, 'the work folder is gone');

  // The fuses, read back from the executable the installers carry.
  const fuses = await readFuses(path.join(app, 'Outpost.exe'));
  assert.deepEqual(Object.fromEntries(fuses.map(({ fuse, actual }) => [fuse, actual])), ELECTRON_FUSES);
  assert.deepEqual(await checkPackagedApp(app, { trustRoot: true, organisation: true }), []);

  // The packaged program runs as the version it was built as (the stand-in runs its `outpost` entry from app.asar).
  const version = await runWindowsProgram(wine, path.join(app, 'Outpost.exe'), ['--version'], { env: { OUTPOST_HOME: tempDir(t) } });
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.trim(), VERSION);

  // The checks can fail: a fuse turned back on, and an app.asar changed after the build.
  const { flipFuses, FuseV1Options, FuseVersion } = await import('@electron/fuses');
  const tampered = path.join(tempDir(t, 'outpost-tampered-'), 'win-unpacked');
  fs.cpSync(app, tampered, { recursive: true });
  await flipFuses(path.join(tampered, 'Outpost.exe'), { version: FuseVersion.V1, [FuseV1Options.RunAsNode]: true });
  const asar = path.join(tampered, 'resources', 'app.asar');
  const bytes = fs.readFileSync(asar);
  bytes.write('"FILES"', bytes.indexOf('"files"'), 'latin1'); // in the header, whose hash the executable carries
  fs.writeFileSync(asar, bytes);
  assert.deepEqual(await checkPackagedApp(tampered, { trustRoot: true, organisation: true }), [
    'fuse runAsNode is on in Outpost.exe, not off',
    `resources/app.asar does not match the integrity hash in Outpost.exe (${integrityOf(path.join(app, 'Outpost.exe'))})`,
  ]);
  fs.rmSync(path.join(tampered, 'resources', 'updater'), { recursive: true });
  assert.ok((await checkPackagedApp(tampered, { trustRoot: true, organisation: true })).includes('resources/updater/outpost-updater.exe is missing'));
});

function integrityOf(exe: string): string {
  const text = fs.readFileSync(exe).toString('latin1');
  return /"file":"resources\\\\app\.asar","alg":"SHA256","value":"([0-9a-f]{64})"/.exec(text)?.[1] ?? '';
}

/** `node dist/tools/dist/main.js` (what `npm run dist` runs after the build), as the version given. */
function runDist(args: string[], version: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'dist', 'tools', 'dist', 'main.js'), ...args, '--app-version', version], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}
