/**
 * The NSIS installer: build/installer.nsi (our own 64-bit script, stock NSIS includes and plugins
 * only) compiled by makensis over the packaged app's `win-unpacked/` folder.
 *
 * makensis runs directly rather than through electron-builder's `nsis` target: that target only
 * helps with its own template (which needs plugins Debian lacks and is a 32-bit stub). With a custom
 * script it would still need a wrapper folder for makensis (ELECTRON_BUILDER_NSIS_DIR), Debian's
 * plugins relinked (ELECTRON_BUILDER_NSIS_RESOURCES_DIR), 7za, and a second packing of the app,
 * and it passes dozens of defines the script would have to ignore. Here the script gets exactly the
 * defines it documents, and the build is one process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runToCompletion } from '../sea/run.js';
import { findOnPath } from '../build/commands.js';
import { isPe64 } from './checks.js';
import type { BuiltInstaller, InstallerOptions } from './installer-build.js';
import { DistError } from './package-app.js';

export const NSIS_APT_PACKAGE = 'nsis';

/** Builds `<outDir>/Outpost-Setup-<version>.exe`. */
const BUILD_TIMEOUT_MS = 30 * 60_000;

export async function buildNsisInstaller(options: InstallerOptions): Promise<BuiltInstaller> {
  const { repoRoot, appDir, outDir, version, log } = options;
  const makensis = findOnPath('makensis');
  if (makensis === null) throw new DistError(`makensis is not on PATH: install NSIS 3 (Debian/Ubuntu: apt-get install -y ${NSIS_APT_PACKAGE})`);
  if (!fs.existsSync(path.join(appDir, 'Outpost.exe'))) throw new DistError(`${appDir} holds no Outpost.exe: give the packaged app's win-unpacked folder`);
  const parts = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(version);
  if (!parts) throw new DistError(`the version "${version}" is not major.minor.patch[-prerelease]`);

  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(path.resolve(outDir), `Outpost-Setup-${version}.exe`);
  fs.rmSync(file, { force: true });
  const icon = path.join(repoRoot, 'dist', 'assets', 'icons', 'win32', 'tray-idle.ico');
  const defines: Record<string, string> = {
    VERSION: version,
    VI_VERSION: `${parts[1]}.${parts[2]}.${parts[3]}.0`,
    APP_DIR: path.resolve(appDir),
    OUT_FILE: file,
    COMPRESSION: options.compression,
    PUBLISHER: options.publisher ?? 'Outpost',
    ...(fs.existsSync(icon) ? { ICON: icon } : {}),
  };
  const script = path.join(repoRoot, 'build', 'installer.nsi');
  // -WX: a warning (an unused variable, a missing file) is an error here, not a surprise on Windows.
  const args = ['-V2', '-WX', ...Object.entries(defines).map(([name, value]) => `-D${name}=${value}`), script];
  log(`makensis: ${version}, ${options.compression} compression, from ${appDir}`);
  const started = Date.now();
  const ran = await runToCompletion(makensis, args, { cwd: path.dirname(script), timeoutMs: BUILD_TIMEOUT_MS });
  const ms = Date.now() - started;
  if (ran.code !== 0) {
    const output = `${ran.stdout}\n${ran.stderr}`.trim().slice(-4000);
    throw new DistError(`makensis failed (${ran.signal ? `signal ${ran.signal}, after ${ms} ms` : `exit ${ran.code}`}) building ${file}:\n${output}`);
  }
  checkAmd64Executable(file);
  const bytes = fs.statSync(file).size;
  log(`makensis: ${file} (${(bytes / 1024 / 1024).toFixed(1)} MiB) in ${ms} ms`);
  return { file, bytes, ms };
}

/** Throws unless `file` is a 64-bit (x64) Windows executable: a 32-bit stub silently does nothing under 64-bit Wine. */
function checkAmd64Executable(file: string): void {
  if (!fs.existsSync(file)) throw new DistError(`makensis reported success but wrote no ${file}`);
  if (!isPe64(file)) throw new DistError(`${file} is not a 64-bit x64 executable: build/installer.nsi must start with "Target amd64-unicode"`);
}
