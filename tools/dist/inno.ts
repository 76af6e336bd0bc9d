/**
 * The Inno Setup installer: build/installer.iss compiled by ISCC.exe of the npm `innosetup` package
 * (Inno Setup 6). On Windows ISCC runs directly; on Linux under Wine, which needs its 32-bit loader
 * (ISCC is a 32-bit program: Debian's `wine32:i386`), in a Wine prefix of its own under
 * .cache/wine-iscc/ that is made on first use. A prefix made before wine32 was installed cannot run
 * 32-bit programs (ENVIRONMENT.md), so a prefix counts as ready only once this module has made it
 * with wine32 present.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findOnPath } from '../build/commands.js';
import { acquireDirLock } from '../build/dir-lock.js';
import type { BuiltInstaller, InstallerOptions } from './installer-build.js';
import { DistError } from './package-app.js';

const COMPRESSION = {
  release: { Compression: 'lzma2/max', SolidCompression: 'yes', timeoutMs: 30 * 60_000 },
  fast: { Compression: 'none', SolidCompression: 'no', timeoutMs: 5 * 60_000 },
} as const;

/** What the installer is named: the NSIS one is Outpost-Setup-<version>.exe. */
export function innoInstallerName(version: string): string {
  return `Outpost-Setup-${version}-inno`;
}

const WINE32_INSTALL = 'dpkg --add-architecture i386 && apt-get update && apt-get install -y --no-install-recommends wine32:i386';
const WINE_INSTALL = 'apt-get install -y --no-install-recommends wine wine64';
/** What Wine prints when a 32-bit program cannot run (no 32-bit loader, or a prefix made without it). */
const NO_WINE32 = /wine32 is missing|Bad EXE format|could not load kernel32\.dll|c0000135/i;
const PREFIX_READY = '.outpost-iscc-ready';

export async function buildInnoInstaller(options: InstallerOptions): Promise<BuiltInstaller> {
  const started = Date.now();
  const { repoRoot, version, log } = options;
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) throw new DistError(`the installer's version must be x.y.z or x.y.z-label (it is ${JSON.stringify(version)})`);
  const script = path.join(repoRoot, 'build', 'installer.iss');
  const iscc = path.join(repoRoot, 'node_modules', 'innosetup', 'bin', 'ISCC.exe');
  const appDir = path.resolve(options.appDir);
  const outDir = path.resolve(options.outDir);
  if (!fs.existsSync(script)) throw new DistError(`${script} is missing`);
  if (!fs.existsSync(iscc)) throw new DistError(`${iscc} is missing: run npm install (the devDependency innosetup provides Inno Setup's compiler)`);
  if (!fs.existsSync(path.join(appDir, 'Outpost.exe'))) throw new DistError(`${appDir} holds no Outpost.exe: pass the packaged app folder (win-unpacked)`);
  fs.mkdirSync(outDir, { recursive: true });
  const name = innoInstallerName(version);
  const file = path.join(outDir, `${name}.exe`);
  fs.rmSync(file, { force: true });

  const settings = COMPRESSION[options.compression];
  const windows = process.platform === 'win32';
  const winPath = windows ? (p: string) => p : (p: string) => `Z:${p.replaceAll('/', '\\')}`;
  const icon = path.join(repoRoot, 'dist', 'assets', 'icons', 'win32', 'tray-idle.ico');
  const defines: Record<string, string> = {
    AppVersion: version,
    AppDir: winPath(appDir),
    OutputDir: winPath(outDir),
    OutputBaseFilename: name,
    Compression: settings.Compression,
    SolidCompression: settings.SolidCompression,
    Publisher: options.publisher ?? 'Outpost',
    ...(fs.existsSync(icon) ? { Icon: winPath(icon) } : {}),
  };
  const args = ['/Qp', ...Object.entries(defines).map(([key, value]) => `/D${key}=${value}`), winPath(script)];
  log(`inno: ISCC ${options.compression === 'release' ? 'LZMA2 max, solid' : 'uncompressed'}, ${version}${windows ? '' : ' (under Wine)'}`);

  let ran: Ran;
  if (windows) {
    ran = await runToFile(iscc, args, { env: process.env, timeoutMs: settings.timeoutMs });
  } else {
    const prefix = path.join(repoRoot, '.cache', 'wine-iscc', 'prefix');
    const env = wineEnv(prefix);
    checkWine();
    await ensurePrefix(prefix, env, log);
    ran = await runToFile('wine', [iscc, ...args], { env, timeoutMs: settings.timeoutMs });
    if (ran.code !== 0 && NO_WINE32.test(ran.output)) {
      throw new DistError(`ISCC.exe (a 32-bit program) cannot run under this Wine: install its 32-bit loader (${WINE32_INSTALL}). Wine said: ${tail(ran.output)}`);
    }
  }
  if (ran.timedOut) throw new DistError(`ISCC did not finish within ${settings.timeoutMs / 60_000} minutes: ${tail(ran.output)}`);
  if (ran.code !== 0) throw new DistError(`ISCC failed (exit ${ran.code ?? ran.signal}) compiling ${script}: ${tail(ran.output)}`);
  const bytes = fs.statSync(file, { throwIfNoEntry: false })?.size;
  if (bytes === undefined) throw new DistError(`ISCC exited 0 but made no ${file}: ${tail(ran.output)}`);
  const ms = Date.now() - started;
  log(`inno: ${file} (${(bytes / 1024 / 1024).toFixed(1)} MiB) in ${(ms / 1000).toFixed(1)} s`);
  return { file, bytes, ms };
}

/** The environment for `wine`: headless, quiet, no Mono or Gecko prompts, no desktop entries. */
function wineEnv(prefix: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, WINEPREFIX: prefix, WINEARCH: 'win64', WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=;winemenubuilder.exe=d' };
  for (const name of ['DISPLAY', 'WAYLAND_DISPLAY', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT', 'NODE_CHANNEL_FD', 'NODE_UNIQUE_ID']) delete env[name];
  return env;
}

/** What keeps ISCC from running under Wine here (and the command that installs it), or null. */
export function innoWineProblem(): { readonly reason: string; readonly install: string } | null {
  if (findOnPath('wine') === null) return { reason: "wine is not on PATH: Inno Setup's compiler runs under Wine on Linux", install: `${WINE_INSTALL} && ${WINE32_INSTALL}` };
  // Debian's layout: /usr/bin/wine starts /usr/lib/wine/wine (32-bit, from wine32:i386) when it exists.
  if (fs.existsSync('/usr/lib/wine/wine64') && !fs.existsSync('/usr/lib/wine/wine')) {
    return { reason: "Wine's 32-bit loader (/usr/lib/wine/wine, Debian's wine32:i386) is missing: ISCC.exe and Inno's Setup are 32-bit programs", install: WINE32_INSTALL };
  }
  return null;
}

function checkWine(): void {
  const problem = innoWineProblem();
  if (problem) throw new DistError(`${problem.reason} (install with: ${problem.install})`);
}

/** Makes the prefix unless it is ready (one process at a time). */
async function ensurePrefix(prefix: string, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  if (fs.existsSync(path.join(prefix, PREFIX_READY))) return;
  const release = await acquireDirLock(`${prefix}.lock`, 10 * 60_000).catch((error: Error) => {
    throw new DistError(error.message);
  });
  try {
    if (fs.existsSync(path.join(prefix, PREFIX_READY))) return;
    // Not made here, or not finished: it may predate wine32, and such a prefix never works.
    fs.rmSync(prefix, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(prefix), { recursive: true });
    log(`inno: making the Wine prefix ${prefix} (once, about 15 s)`);
    const made = await runToFile('wine', ['wineboot', '-i'], { env, timeoutMs: 5 * 60_000 });
    if (made.code !== 0) throw new DistError(`wineboot -i failed (exit ${made.code ?? made.signal}) making ${prefix}: ${tail(made.output)}`);
    fs.writeFileSync(path.join(prefix, PREFIX_READY), `made by tools/dist/inno.ts with wine32 present, ${new Date().toISOString()}\n`);
  } finally {
    release();
  }
}


interface Ran {
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly output: string;
}

/**
 * Runs a command with its output in a file: under Wine, a pipe would also be held by the wineserver
 * that the first `wine` starts, which lives on after the command has exited.
 */
function runToFile(command: string, args: string[], options: { env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Ran> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-iscc-'));
  const file = path.join(dir, 'output');
  const fd = fs.openSync(file, 'w');
  return new Promise<Ran>((resolve, reject) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(command, args, { env: options.env, stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd);
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new DistError(`cannot start ${command}: ${error.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, output: fs.readFileSync(file, 'utf8') });
    });
  }).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

function tail(text: string, max = 3000): string {
  const trimmed = text.trim();
  return trimmed.length > max ? `...${trimmed.slice(-max)}` : trimmed || '(no output)';
}
