/**
 * The packaged app for Windows x64, through electron-builder (`dir` target: `win-unpacked/`): the app
 * bundle in an asar with integrity validation, the native packages unpacked beside it, and in
 * `resources/` the updater's single executable, the organisation's trust root and build config.
 * electron-builder sets the fuses (through @electron/fuses) as electron-builder.yml asks.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ORGANISATION_FILE, OrganisationFile } from '../../app/common/organisation.js';
import { bundleApp } from '../build/app-bundle.js';
import { npmCommand } from '../build/commands.js';
import { buildUpdaterExecutables } from '../sea/build-updater.js';
import { ELECTRON_FUSES } from './fuses.js';

export class DistError extends Error {
  override name = 'DistError';
}

/** The organisation's choices built into a package (documented in README "Installing"). */
export interface Organisation {
  /** The TUF root its feed is signed under (`outpost-release keygen` writes it); without it the package never updates. */
  readonly trustRoot: string | null;
  /** What a first start writes as `backend` in config.json; without it, the loopback defaults. */
  readonly backend: OrganisationFile['backend'] | null;
}

export interface PackageOptions {
  readonly repoRoot: string;
  /** The work folder: `app/` (electron-builder's app), `resources/`, `win-unpacked/`. Emptied first. */
  readonly outDir: string;
  readonly organisation: Organisation;
  /** An unpacked Electron (electron-builder's `electronDist`); null: electron-builder downloads the pinned one. */
  readonly electronDist: string | null;
  /** Windows node.exe of the pinned Node, for the updater's executable (found in the usual places when not given). */
  readonly winNodeExe?: string | undefined;
  /** Build as this version instead of package.json's (tests build several releases). */
  readonly version?: string | undefined;
  readonly log: (line: string) => void;
}

export interface PackagedApp {
  readonly version: string;
  /** The installation's tree: Outpost.exe, Electron's files, resources/. */
  readonly appDir: string;
  /** Outpost.exe. */
  readonly executable: string;
  readonly updaterBytes: number;
}

export async function packageApp(options: PackageOptions): Promise<PackagedApp> {
  const { repoRoot, outDir, log } = options;
  if (options.organisation.trustRoot) checkTrustRoot(options.organisation.trustRoot);
  fs.rmSync(outDir, { recursive: true, force: true });
  const appSource = path.join(outDir, 'app');
  const resources = path.join(outDir, 'resources');
  fs.mkdirSync(appSource, { recursive: true });

  const bundle = await bundleApp({ repoRoot, kind: 'package', outDir: appSource, version: options.version });
  log(`bundle: ${bundle.files.length} files, ${kib(bundle.files.reduce((sum, file) => sum + file.bytes, 0))}`);
  installNativePackages(appSource, log);

  const updater = await buildUpdaterExecutables({ repoRoot, platforms: ['win32'], outDir: path.join(outDir, 'updater-bin'), winNodeExe: options.winNodeExe, fetchWinNode: true, log });
  const updaterExe = updater.executables[0];
  if (!updaterExe) throw new DistError('the updater executable was not built');
  fs.mkdirSync(path.join(resources, 'updater'), { recursive: true });
  fs.copyFileSync(updaterExe.path, path.join(resources, 'updater', 'outpost-updater.exe'));
  writeOrganisation(resources, options.organisation);

  const { build, Platform, Arch } = await import('electron-builder');
  const config = electronBuilderConfig(repoRoot, options, appSource, resources);
  log(`electron-builder: packing ${bundle.version} for win32-x64${options.electronDist ? ` with the Electron in ${options.electronDist}` : ''}`);
  await build({ projectDir: appSource, targets: Platform.WINDOWS.createTarget(['dir'], Arch.x64), config, publish: 'never' });
  const appDir = path.join(outDir, 'win-unpacked');
  const executable = path.join(appDir, 'Outpost.exe');
  if (!fs.existsSync(executable)) throw new DistError(`electron-builder made no ${executable}`);
  return { version: bundle.version, appDir, executable, updaterBytes: updaterExe.bytes };
}

/** electron-builder.yml, with what only this build knows: the folders, the Electron to use. */
function electronBuilderConfig(repoRoot: string, options: PackageOptions, appSource: string, resources: string): Record<string, unknown> {
  return {
    extends: path.join(repoRoot, 'electron-builder.yml'),
    electronVersion: electronVersion(repoRoot),
    electronFuses: ELECTRON_FUSES,
    ...(options.electronDist ? { electronDist: path.resolve(options.electronDist) } : {}),
    directories: { app: appSource, output: options.outDir, buildResources: path.join(repoRoot, 'build') },
    extraResources: [{ from: resources, to: '.', filter: ['**/*'] }],
    win: { icon: path.join(repoRoot, 'dist', 'assets', 'icons', 'win32', 'tray-idle.ico') },
  };
}

/** The app's dependencies (its package.json: the native packages the bundle loads), installed for win32-x64 whatever the build machine. */
function installNativePackages(appSource: string, log: (line: string) => void): void {
  const { dependencies } = JSON.parse(fs.readFileSync(path.join(appSource, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const specs = Object.entries(dependencies).map(([name, version]) => `${name}@${version}`);
  log(`native packages for win32-x64: ${specs.join(', ')}`);
  const npm = npmCommand(['install', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund', '--omit=dev', '--os=win32', '--cpu=x64']);
  const installed = spawnSync(npm.command, npm.args, { shell: npm.shell, cwd: appSource, encoding: 'utf8', timeout: 300_000 });
  if (installed.status !== 0) throw new DistError(`npm install of ${specs.join(' ')} for win32-x64 failed (exit ${installed.status}): ${installed.stderr || installed.error?.message}`);
}

function writeOrganisation(resources: string, organisation: Organisation): void {
  if (organisation.trustRoot) {
    fs.mkdirSync(path.join(resources, 'trust'), { recursive: true });
    fs.copyFileSync(organisation.trustRoot, path.join(resources, 'trust', 'root.json'));
  }
  if (organisation.backend) {
    const file: OrganisationFile = OrganisationFile.parse({ backend: organisation.backend });
    fs.writeFileSync(path.join(resources, ORGANISATION_FILE), `${JSON.stringify(file, null, 2)}\n`);
  }
}

/** A TUF root, as `outpost-release keygen` writes it: refused early, not after an install that can never update. */
export function checkTrustRoot(file: string): void {
  let root: { signed?: { _type?: unknown } };
  try {
    root = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new DistError(`--trust-root ${file} cannot be read as JSON: ${(error as Error).message}`);
  }
  if (root?.signed?._type !== 'root') throw new DistError(`--trust-root ${file} is not a TUF root (the root.json that outpost-release keygen writes)`);
}

function electronVersion(repoRoot: string): string {
  return JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules', 'electron', 'package.json'), 'utf8')).version;
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}
