/**
 * Installers under Wine, as the installer tests, the installer-and-updater test and the installer
 * benchmark drive them: Windows programs run with the test's environment (OUTPOST_HOME: the agent
 * Setup starts inherits it) and the harness's tag (which finds every process they started), output
 * through files (never pipes), the registry read in the 64-bit view, and a teardown that leaves no
 * installation and no process in the shared prefix. NsisLab and InnoLab add each installer's way of
 * installing and uninstalling.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { readText } from '../../app/base/durable-file.js';
import { UNINSTALL_KEY } from '../../app/main/platform/win32-uninstall-entry.js';
import type { BuiltInstaller } from '../../tools/dist/installer-build.js';
import { findOnPath } from '../../tools/build/commands.js';
import { innoWineProblem } from '../../tools/dist/inno.js';
import { NSIS_APT_PACKAGE } from '../../tools/dist/nsis.js';
import { tierUnavailable } from '../helpers/tiers.js';
import { until } from '../helpers/wait.js';
import { HARNESS_TAG, taggedProcesses, toWindowsPath, type Wine } from './harness.js';

export const RUN_KEY = 'Software\\Microsoft\\Windows\\CurrentVersion\\Run';
/** The NSIS installer's Apps & features entry. */
export const NSIS_ENTRY = `${UNINSTALL_KEY}\\Outpost`;
/** Inno Setup's: its AppId and `_is1`. */
export const INNO_ENTRY = `${UNINSTALL_KEY}\\Outpost_is1`;
/** Inno Setup's silent switches. */
export const INNO_SILENT = ['/VERYSILENT', '/SUPPRESSMSGBOXES', '/NORESTART'];

export interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface AgentStatus {
  readonly state: string;
  readonly version: string;
  readonly pid: number;
}

/** Windows programs under Wine with the test's environment and tag; output through files (never pipes). */
abstract class InstallerLab {
  protected readonly wine: Wine;
  protected readonly env: NodeJS.ProcessEnv;
  protected readonly work: string;
  readonly #tag = `installer-${crypto.randomUUID()}`;
  readonly #installations: string[] = [];
  #runs = 0;
  userPrograms = '';
  localAppData = '';
  protected temp = '';
  readonly machinePrograms: string;

  constructor(wine: Wine, work: string, env: NodeJS.ProcessEnv) {
    this.wine = wine;
    this.work = work;
    this.env = { ...wine.env, ...env, [HARNESS_TAG]: this.#tag };
    this.machinePrograms = path.join(wine.prefix, 'drive_c', 'ProgramData', 'Microsoft', 'Windows', 'Start Menu', 'Programs');
  }

  /** Lets setup programs run without a display (the null graphics driver), and reads the user's folders from Windows. */
  async start(): Promise<void> {
    const drivers = await this.run(['reg', 'add', 'HKCU\\Software\\Wine\\Drivers', '/v', 'Graphics', '/d', 'null', '/f']);
    assert.equal(drivers.code, 0, drivers.stderr);
    const ran = await this.run(['cmd', '/c', 'echo %APPDATA%^|%LOCALAPPDATA%^|%TEMP%']);
    assert.equal(ran.code, 0, ran.stderr);
    const [appData = '', localAppData = '', temp = ''] = ran.stdout.trim().split('|');
    this.userPrograms = path.join(this.linuxPath(appData), 'Microsoft', 'Windows', 'Start Menu', 'Programs');
    this.localAppData = localAppData;
    this.temp = this.linuxPath(temp);
  }

  /** Remembered for the teardown, which uninstalls whatever a failed test left there. */
  installedIn(dir: string): void {
    this.#installations.push(dir);
  }

  run(args: string[], timeoutMs = 60_000): Promise<Ran> {
    const dir = this.#runDir();
    const outFile = path.join(dir, 'stdout');
    const errFile = path.join(dir, 'stderr');
    const out = fs.openSync(outFile, 'w');
    const err = fs.openSync(errFile, 'w');
    return new Promise<Ran>((resolve, reject) => {
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn('wine', args, { env: this.env, cwd: this.work, stdio: ['ignore', out, err] });
      } finally {
        fs.closeSync(out);
        fs.closeSync(err);
      }
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`wine ${args.join(' ')} still running after ${timeoutMs} ms: ${readText(outFile)} ${readText(errFile)}`));
      }, timeoutMs);
      child.once('error', reject);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout: readText(outFile), stderr: readText(errFile) });
      });
    });
  }

  /** Starts a program and leaves it running, as a sign-in would (the teardown kills what is left). */
  launch(exe: string): void {
    const out = fs.openSync(path.join(this.#runDir(), 'output'), 'w');
    try {
      spawn('wine', [exe], { env: this.env, cwd: this.work, stdio: ['ignore', out, out], detached: true }).unref();
    } finally {
      fs.closeSync(out);
    }
  }

  /** `Outpost.exe status` of the installation (null: none runs). */
  async status(dir: string): Promise<AgentStatus | null> {
    const ran = await this.run([path.join(dir, 'Outpost.exe'), 'status']);
    if (ran.code === 1) return null;
    assert.equal(ran.code, 0, ran.stderr);
    return JSON.parse(ran.stdout) as AgentStatus;
  }

  /**
   * Waits for the installation's agent to answer `status` as IDLE at `version`. While a self-update
   * swaps the folder, `Outpost.exe` is briefly not there and Wine cannot start it: that is waited
   * through like an agent not yet running.
   */
  async waitForAgent(dir: string, version: string, timeoutMs = 90_000): Promise<AgentStatus> {
    let last = '';
    return until(
      `the agent ${version} from ${dir} to reach IDLE`,
      async () => {
        const ran = await this.run([path.join(dir, 'Outpost.exe'), 'status']);
        last = `exit ${ran.code}: ${ran.stdout}${ran.stderr}`;
        const status = ran.code === 0 ? (JSON.parse(ran.stdout) as AgentStatus) : null;
        return status?.state === 'IDLE' && status.version === version ? status : undefined;
      },
      timeoutMs,
      () => last,
    );
  }


  /** The values of a key (names lower-cased), read in the 64-bit view; null when there is no such key. */
  async reg(key: string): Promise<Map<string, string> | null> {
    const ran = await this.run(['reg', 'query', key, '/reg:64']);
    if (ran.code === 1) return null;
    assert.equal(ran.code, 0, `reg query ${key}: ${ran.stderr}`);
    const values = new Map<string, string>();
    for (const line of ran.stdout.split(/\r?\n/)) {
      const match = /^\s{4}(.+?)\s{4}(REG_\w+)\s{4}(.*)$/.exec(line);
      if (match?.[1] && match[2]) values.set(match[1].toLowerCase(), match[2] === 'REG_DWORD' ? String(Number(match[3])) : (match[3] ?? ''));
    }
    return values;
  }

  /** Linux pids of the live Outpost.exe processes this test started (an agent Setup started). */
  runningAgents(): number[] {
    return this.tagged(/Outpost\.exe/i);
  }

  /** C:\x -> <prefix>/drive_c/x; Z:\x -> /x. */
  linuxPath(windowsPath: string): string {
    const [drive, ...rest] = windowsPath.split('\\');
    const root = drive?.toUpperCase() === 'Z:' ? '/' : path.join(this.wine.prefix, 'drive_c');
    return path.join(root, ...rest);
  }

  /** <prefix>/drive_c/x -> C:\x (what Windows programs see); /x -> Z:\x. */
  windowsPath(linuxPath: string): string {
    const inside = path.relative(path.join(this.wine.prefix, 'drive_c'), linuxPath);
    return inside.startsWith('..') ? toWindowsPath(linuxPath) : `C:\\${inside.replaceAll('/', '\\')}`;
  }

  /** Teardown: no installation and no process left behind in the shared prefix. */
  async cleanUp(): Promise<void> {
    for (const dir of this.#installations) await this.removeInstallation(dir).catch(() => undefined);
    for (const pid of this.tagged(/./)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  /** Uninstalls what a failed test may have left in `dir`. */
  protected abstract removeInstallation(dir: string): Promise<void>;

  /** Live processes this lab started (Wine's services excluded) whose command line matches. */
  protected tagged(command: RegExp): number[] {
    return taggedProcesses(this.#tag).filter((pid) => {
      try {
        return command.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
      } catch {
        return false; // gone meanwhile
      }
    });
  }

  /** The uninstall string of the hive's entry, as a deployment tool reads it: the program and its switches. */
  protected async quietUninstall(hive: 'HKCU' | 'HKLM', entry: string): Promise<{ program: string; args: string[] }> {
    const quiet = (await this.reg(`${hive}\\${entry}`))?.get('quietuninstallstring');
    const parts = quiet ? /^"([^"]+)" (.*)$/.exec(quiet) : null;
    assert.ok(parts?.[1] && parts[2] !== undefined, `QuietUninstallString ${quiet}`);
    return { program: parts[1], args: parts[2].split(' ') };
  }

  #runDir(): string {
    const dir = path.join(this.work, 'runs', String(++this.#runs));
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }
}

/** The NSIS installer (build/installer.nsi): 64-bit Setup and uninstaller. */
export class NsisLab extends InstallerLab {
  #nsisTempBefore = new Set<string>();

  override async start(): Promise<void> {
    await super.start();
    this.#nsisTempBefore = new Set(this.#nsisTemp());
  }

  /**
   * Runs Setup with this command line (through `cmd /c`: NSIS reads `/D=` only last and unquoted, while
   * `wine` quotes an argument that holds a space); its exit code and its log (%TEMP%\Outpost-Setup.log).
   */
  async install(installer: BuiltInstaller | undefined, commandLine: string): Promise<{ code: number | null; log: string }> {
    assert.ok(installer && !/\s/.test(installer.file), `${installer?.file}: a path without spaces (cmd /c)`);
    const ran = await this.run(['cmd', '/c', `${toWindowsPath(installer.file)} ${commandLine}`], 180_000);
    return { code: ran.code, log: this.#log('Outpost-Setup.log') };
  }

  /** Runs the QuietUninstallString of the hive's entry (with `extra` switches); the uninstaller's log (%TEMP%\Outpost-Uninstall.log). */
  async uninstall(hive: 'HKCU' | 'HKLM', extra: string): Promise<{ log: string }> {
    const { program, args } = await this.quietUninstall(hive, NSIS_ENTRY);
    return this.#uninstallWith(program, [...args, ...(extra ? [extra] : [])]);
  }

  override async cleanUp(): Promise<void> {
    await super.cleanUp();
    for (const name of this.#nsisTemp()) {
      if (!this.#nsisTempBefore.has(name)) fs.rmSync(path.join(this.temp, name), { recursive: true, force: true });
    }
  }

  protected override async removeInstallation(dir: string): Promise<void> {
    const uninstaller = path.join(`${dir}.uninstall`, 'Uninstall Outpost.exe');
    if (fs.existsSync(uninstaller)) await this.#uninstallWith(this.windowsPath(uninstaller), ['/S']);
  }

  /**
   * An NSIS uninstaller relaunches itself from %TEMP% (so that it can remove itself) and returns at
   * once, exit 0: this waits until that copy has ended and the uninstaller's folder is gone.
   */
  async #uninstallWith(uninstaller: string, args: string[]): Promise<{ log: string }> {
    const ran = await this.run([uninstaller, ...args]);
    assert.equal(ran.code, 0, `${uninstaller} ${args.join(' ')}: ${ran.stderr}`);
    const folder = this.linuxPath(path.win32.dirname(uninstaller));
    await until('the uninstaller to finish', () => !fs.existsSync(folder) && this.tagged(/\\(Un|Au_)\.exe/i).length === 0, 90_000, () => this.#log('Outpost-Uninstall.log'));
    return { log: this.#log('Outpost-Uninstall.log') };
  }

  #log(name: string): string {
    const file = path.join(this.temp, name);
    return fs.existsSync(file) ? fs.readFileSync(file).toString('utf16le').replace(/^\uFEFF/, '') : `(no ${file})`;
  }

  /** The folders NSIS uninstallers copy themselves into (`~nsu*.tmp`). */
  #nsisTemp(): string[] {
    return this.temp && fs.existsSync(this.temp) ? fs.readdirSync(this.temp).filter((name) => /^~nsu.*\.tmp$/i.test(name)) : [];
  }
}

/** The Inno Setup installer (build/installer.iss): a 32-bit Setup that installs in 64-bit mode. */
export class InnoLab extends InstallerLab {
  /** Runs Setup silently; its exit code and its log. */
  async setup(installer: BuiltInstaller | undefined, args: string[]): Promise<Ran & { log: string }> {
    assert.ok(installer);
    const log = path.join(this.work, `setup-${crypto.randomUUID()}.log`);
    const ran = await this.run([installer.file, ...INNO_SILENT, `/LOG=${toWindowsPath(log)}`, ...args], 180_000);
    return { ...ran, log: readText(log) };
  }

  /** Runs the QuietUninstallString of the hive's entry (with more switches), as a deployment tool would. */
  async uninstall(hive: 'HKCU' | 'HKLM', extra: string[]): Promise<Ran & { log: string }> {
    const { program, args } = await this.quietUninstall(hive, INNO_ENTRY);
    return this.#uninstallWith(program, [...args, '/SUPPRESSMSGBOXES', ...extra]);
  }

  protected override async removeInstallation(dir: string): Promise<void> {
    const uninstaller = path.join(`${dir}.uninstall`, 'unins000.exe');
    if (fs.existsSync(uninstaller)) await this.#uninstallWith(uninstaller, [...INNO_SILENT]);
  }

  /**
   * Inno's uninstaller runs as a copy in %TEMP% (`_unins.tmp`); the program started returns once the
   * files in its log are gone, and the copy then removes the uninstaller and its folder: waited for.
   */
  async #uninstallWith(uninstaller: string, args: string[]): Promise<Ran & { log: string }> {
    const log = path.join(this.work, `uninstall-${crypto.randomUUID()}.log`);
    const ran = await this.run([uninstaller, ...args, `/LOG=${toWindowsPath(log)}`], 180_000);
    await until('the uninstaller to finish', () => this.tagged(/_unins\.tmp|unins000\.exe/i).length === 0, 60_000, () => readText(log));
    return { ...ran, log: readText(log) };
  }
}

/** The entry's values but EstimatedSize (checked against the files). */
export function withoutSize(entry: Map<string, string>): Record<string, string> {
  return Object.fromEntries([...entry].filter(([name]) => name !== 'estimatedsize'));
}

/** The size of the files under `dir` in KB, and how many there are. */
export function treeSize(dir: string): { kb: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    bytes += fs.statSync(path.join(entry.parentPath, entry.name)).size;
    files++;
  }
  return { kb: Math.round(bytes / 1024), files };
}

/**
 * Whether the installers' builders can run here: makensis for NSIS, 32-bit Wine for Inno Setup's
 * ISCC. When one is missing, the test is skipped by name (failed under CI) and this returns false.
 */
export function installerToolsOrSkip(t: TestContext, needs: { readonly nsis?: boolean; readonly inno?: boolean }): boolean {
  if (needs.nsis && findOnPath('makensis') === null) {
    tierUnavailable(t, 'wine', 'makensis not found on PATH (it builds the NSIS installer)', `apt-get install -y --no-install-recommends ${NSIS_APT_PACKAGE}`);
    return false;
  }
  const problem = needs.inno ? innoWineProblem() : null;
  if (problem) {
    tierUnavailable(t, 'wine', problem.reason, problem.install);
    return false;
  }
  return true;
}

/** Times the steps of a test and reports them, in one diagnostic line, when it ends. */
export function stopwatch(t: TestContext): <T>(what: string, work: () => Promise<T> | T) => Promise<T> {
  const timings: string[] = [];
  t.after(() => t.diagnostic(timings.join('; ')));
  return async (what, work) => {
    const started = Date.now();
    const result = await work();
    timings.push(`${what} ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
  };
}
