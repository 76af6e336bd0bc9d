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
import { DistError } from './package-app.js';

export const NSIS_APT_PACKAGE = 'nsis';

export interface NsisOptions {
  readonly repoRoot: string;
  /** The packaged app: electron-builder's `win-unpacked/` (Outpost.exe, resources/). */
  readonly appDir: string;
  readonly outDir: string;
  readonly version: string;
  /** release: LZMA, solid (the smallest installer; minutes for 186 MB). fast: stored, for tests. */
  readonly compression: 'release' | 'fast';
  /** Apps & features' publisher (default: Outpost). */
  readonly publisher?: string | undefined;
  readonly log: (line: string) => void;
}

export interface NsisInstaller {
  /** `<outDir>/Outpost-Setup-<version>.exe` */
  readonly file: string;
  readonly bytes: number;
  readonly ms: number;
}

const BUILD_TIMEOUT_MS = 30 * 60_000;
const IMAGE_FILE_MACHINE_AMD64 = 0x8664;
const PE32_PLUS = 0x20b;

export async function buildNsisInstaller(options: NsisOptions): Promise<NsisInstaller> {
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
  const head = Buffer.alloc(4096);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  const pe = head.toString('latin1', 0, 2) === 'MZ' ? head.readUInt32LE(0x3c) : -1;
  if (pe < 0 || pe + 26 > head.length || head.toString('latin1', pe, pe + 4) !== 'PE\0\0') throw new DistError(`${file} is not a Windows executable (no PE header)`);
  const machine = head.readUInt16LE(pe + 4);
  const magic = head.readUInt16LE(pe + 24);
  if (machine !== IMAGE_FILE_MACHINE_AMD64 || magic !== PE32_PLUS) {
    throw new DistError(`${file} is not a 64-bit x64 executable (machine 0x${machine.toString(16)}, optional header 0x${magic.toString(16)}): build/installer.nsi must start with "Target amd64-unicode"`);
  }
}

function findOnPath(command: string): string | null {
  const name = process.platform === 'win32' ? `${command}.exe` : command;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}
