/**
 * `npm run dist`: the packaged app and its two installers, checked.
 *
 *   npm run dist -- [--trust-root FILE] [--backend URL [--backend-ws URL]] [--electron-dist DIR]
 *                   [--out DIR] [--fast] [--no-inno] [--no-nsis] [--app-version X] [--win-node-exe FILE]
 *
 * 1. cleans the output folder (default release/);
 * 2. bundles main, preload and renderer (esbuild; the update pipeline and error reports stay in lazily
 *    loaded chunks), builds the updater's Windows executable, and packs the app with electron-builder
 *    (asar with integrity, fuses), with the organisation's trust root and backend in resources/;
 * 3. builds the NSIS installer (build/installer.nsi) and the Inno Setup installer (build/installer.iss);
 * 4. checks every output (64-bit executables, expected files, fuses, asar integrity) and prints sizes.
 * Exit 0 when everything was built and checked; 1 with the problems named otherwise; 64 bad arguments.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { valid } from 'semver';
import { checkPackagedApp } from './checks.js';
import { buildInnoInstaller } from './inno.js';
import { buildNsisInstaller } from './nsis.js';
import { checkTrustRoot, DistError, type Organisation, packageApp } from './package-app.js';
import { describeError } from '../../app/base/errors.js';

const USAGE = `usage: npm run dist -- [--trust-root FILE] [--backend URL [--backend-ws URL]] [--electron-dist DIR]
                     [--out DIR] [--fast] [--no-nsis] [--no-inno] [--app-version X] [--win-node-exe FILE]`;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface DistOptions {
  readonly repoRoot: string;
  readonly outDir: string;
  readonly organisation: Organisation;
  readonly electronDist: string | null;
  readonly winNodeExe?: string | undefined;
  /** Fast compression (tests); a release compresses hard. */
  readonly fast: boolean;
  readonly installers: { readonly nsis: boolean; readonly inno: boolean };
  /** Build as this version instead of package.json's (tests). */
  readonly version?: string | undefined;
  readonly log: (line: string) => void;
}

export interface DistResult {
  readonly version: string;
  readonly appDir: string;
  readonly installedBytes: number;
  readonly updaterBytes: number;
  readonly installers: { readonly kind: 'nsis' | 'inno'; readonly file: string; readonly bytes: number; readonly ms: number }[];
}

export async function dist(options: DistOptions): Promise<DistResult> {
  const { repoRoot, outDir, log } = options;
  // Before the previous outputs are removed: a typo must not cost them.
  if (options.organisation.trustRoot) checkTrustRoot(options.organisation.trustRoot);
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const work = path.join(outDir, 'build');
  const packaged = await packageApp({ repoRoot, outDir: work, organisation: options.organisation, electronDist: options.electronDist, winNodeExe: options.winNodeExe, version: options.version, log });
  const appDir = path.join(outDir, 'win-unpacked');
  fs.renameSync(packaged.appDir, appDir);
  const problems = await checkPackagedApp(appDir, { trustRoot: options.organisation.trustRoot !== null, organisation: options.organisation.backend !== null });
  if (problems.length > 0) throw new DistError(`the packaged app failed its checks:\n  ${problems.join('\n  ')}`);
  log('checked: 64-bit executables, expected files, fuses, asar integrity');
  const compression = options.fast ? 'fast' : 'release';
  const installers: DistResult['installers'][number][] = [];
  const installer = { repoRoot, appDir, outDir, version: packaged.version, compression, log } as const;
  if (options.installers.nsis) installers.push({ kind: 'nsis', ...(await buildNsisInstaller(installer)) });
  if (options.installers.inno) installers.push({ kind: 'inno', ...(await buildInnoInstaller(installer)) });
  fs.rmSync(work, { recursive: true, force: true });
  return { version: packaged.version, appDir, installedBytes: treeBytes(appDir), updaterBytes: packaged.updaterBytes, installers };
}

function treeBytes(dir: string): number {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + fs.statSync(path.join(entry.parentPath, entry.name)).size, 0);
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export async function cli(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  try {
    ({ values } = parse(argv));
  } catch (error) {
    process.stderr.write(`dist: ${(error as Error).message}\n${USAGE}\n`);
    return 64;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const backend = values.backend ? { url: values.backend, ws_url: values['backend-ws'] ?? `${values.backend.replace(/^http/, 'ws').replace(/\/$/, '')}/ws` } : null;
  if (values['backend-ws'] && !backend) {
    process.stderr.write(`dist: --backend-ws goes with --backend\n${USAGE}\n`);
    return 64;
  }
  if (values['app-version'] !== undefined && !valid(values['app-version'])) {
    process.stderr.write(`dist: --app-version must be a semantic version (1.2.3), not "${values['app-version']}"\n${USAGE}\n`);
    return 64;
  }
  const log = (line: string) => process.stdout.write(`dist: ${line}\n`);
  const started = Date.now();
  try {
    const result = await dist({
      repoRoot: REPO_ROOT,
      outDir: path.resolve(values.out ?? path.join(REPO_ROOT, 'release')),
      organisation: { trustRoot: values['trust-root'] ? path.resolve(values['trust-root']) : null, backend },
      electronDist: values['electron-dist'] ? path.resolve(values['electron-dist']) : null,
      winNodeExe: values['win-node-exe'],
      version: values['app-version'],
      fast: values.fast === true,
      installers: { nsis: values['no-nsis'] !== true, inno: values['no-inno'] !== true },
      log,
    });
    if (!values['trust-root']) log('warning: no --trust-root: this package has no trust root and will never update itself');
    log(`Outpost ${result.version} for win32-x64: installed size ${mib(result.installedBytes)}, of which the updater ${mib(result.updaterBytes)} (${((100 * result.updaterBytes) / result.installedBytes).toFixed(0)}%)`);
    log(`  ${path.relative(process.cwd(), result.appDir)}/`);
    for (const made of result.installers) log(`  ${path.relative(process.cwd(), made.file)}  ${mib(made.bytes)}  (${made.kind}, ${(made.ms / 1000).toFixed(1)} s)`);
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return 0;
  } catch (error) {
    // Every step's errors say what failed and what to do (a missing tool, a failed check); the stack adds nothing.
    process.stderr.write(`dist: ${describeError(error)}\n`);
    return 1;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      'trust-root': { type: 'string' },
      backend: { type: 'string' },
      'backend-ws': { type: 'string' },
      'electron-dist': { type: 'string' },
      'win-node-exe': { type: 'string' },
      'app-version': { type: 'string' },
      out: { type: 'string' },
      fast: { type: 'boolean' },
      'no-nsis': { type: 'boolean' },
      'no-inno': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await cli(process.argv.slice(2));
}
