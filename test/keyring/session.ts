/**
 * The keyring tier's harness: per-user agents run for real, in a throwaway D-Bus session with its
 * own gnome-keyring-daemon (the Secret Service), or with no D-Bus at all.
 *
 * Why another user: the tests run as root, and a root agent is per-machine ("elevated"): it keeps its
 * secret in a file and never asks a credential store. So under root every process of a session
 * (dbus-run-session, dbus-daemon, gnome-keyring-daemon, the agent, `status`, secret-tool) runs as
 * nobody through `setpriv`; under any other user, as that user.
 *
 * Nothing here needs dbus-x11 (dbus-launch): the bus comes from dbus-run-session (package
 * dbus-daemon), its address is always given in DBUS_SESSION_BUS_ADDRESS, and the no-D-Bus case
 * leaves that variable out and points XDG_RUNTIME_DIR at an empty folder (so no `bus` socket either).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { OUTPOST_BIN, REPO_ROOT, tempDir } from '../helpers/paths.js';
import { Child, type Finished, READY } from '../helpers/processes.js';
import { tierUnavailable } from '../helpers/tiers.js';

export const KEYRING_APT_INSTALL = 'apt-get install -y --no-install-recommends gnome-keyring dbus-daemon libsecret-tools';

/** Who runs a session's processes. */
export interface SessionUser {
  readonly uid: number;
  readonly gid: number;
  /** For messages: "nobody (uid 65534)". */
  readonly label: string;
  /** What every command of the session is run through. */
  readonly prefix: readonly string[];
}

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

export const sessionUser: SessionUser = isRoot
  ? { uid: NOBODY, gid: NOBODY, label: `nobody (uid ${NOBODY})`, prefix: ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'] }
  : { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1, label: `uid ${process.getuid?.()}`, prefix: [] };

/** The tools a session needs that are not on PATH. */
function missingTools(dbus: boolean): string[] {
  const needed = dbus ? ['dbus-run-session', 'dbus-send', 'gnome-keyring-daemon', 'secret-tool'] : [];
  if (isRoot) needed.push('setpriv');
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const found = (tool: string) =>
    dirs.some((dir) => {
      try {
        fs.accessSync(path.join(dir, tool), fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  return needed.filter((tool) => !found(tool));
}

/** The unlock password of the throwaway login keyring. */
const KEYRING_PASSWORD = 'outpost-keyring-tier';

/**
 * Runs inside `dbus-run-session`: starts gnome-keyring unlocked (which creates and unlocks the login
 * keyring), waits until it owns the Secret Service name (the starting process may return before
 * that, and a call in between would D-Bus-activate a second daemon), reports, then holds the
 * session open until its stdin closes: the test closing it, or the test process dying.
 */
const SESSION_SCRIPT = `
set -eu
printf '%s' "$1" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
pid_of() {
  dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \\
    org.freedesktop.DBus.GetConnectionUnixProcessID "string:$1" 2>/dev/null | awk '{ print $2 }'
}
keyring=
for _ in $(seq 100); do
  keyring=$(pid_of org.freedesktop.secrets)
  [ -n "$keyring" ] && break
  sleep 0.05
done
[ -n "$keyring" ] || { echo "gnome-keyring-daemon never took org.freedesktop.secrets" >&2; exit 1; }
echo "session bus=$DBUS_SESSION_BUS_ADDRESS keyring=$keyring bus-daemon=$(pid_of org.freedesktop.DBus)"
exec cat >/dev/null
`;
const SESSION_READY = /^session bus=(\S+) keyring=(\d+) bus-daemon=(\d+)$/m;

let checkoutUsable: Promise<void> | undefined;

/**
 * Fails (never skips) when the session user cannot run this Node and this checkout. The test does
 * not change the repository's modes: that is for whoever set up the machine.
 */
function assertCheckoutUsable(): Promise<void> {
  checkoutUsable ??= (async () => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/' };
    const probes: [string, string[]][] = [
      [`Node (${process.execPath}), bin/ and dist/`, [process.execPath, OUTPOST_BIN, '--version']],
      ['node_modules/@napi-rs/keyring (native binding)', [process.execPath, '-e', "require('@napi-rs/keyring')"]],
    ];
    for (const [what, [command, ...args]] of probes) {
      const result = await new Child(...asUser(command as string, args), env).finish(15_000);
      if (result.code !== 0) {
        assert.fail(
          `${sessionUser.label} cannot run ${what} from ${REPO_ROOT} (exit ${result.code}): ${result.stderr.trim()}\n` +
            `The keyring tier runs the agent as that user: make Node, dist/, bin/ and node_modules/ readable (and folders searchable) by it; the test does not change the repository's modes.`,
        );
      }
    }
  })();
  return checkoutUsable;
}

/**
 * command+args as the session user, from the repository root. The folder matters: under ESM,
 * electron-log names the app from the nearest package.json above the current folder, and without
 * one the agent silently writes no log file (app/main/core/logger.ts sets no app name).
 */
function asUser(command: string, args: readonly string[]): [string, string[]] {
  const [first, ...rest] = [...sessionUser.prefix, 'env', `--chdir=${REPO_ROOT}`, command, ...args];
  return [first as string, rest];
}

/** A folder owned by the session user, mode 0700. */
function userDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  if (isRoot) fs.chownSync(dir, sessionUser.uid, sessionUser.gid);
  return dir;
}

/** Not running: gone, or a zombie (some container inits never reap orphans). */
function isAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** The effective uid of a running process. */
function euidOf(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+\d+\s+(\d+)/m);
  return Number(line?.[1]);
}

export interface SessionOptions {
  /** A D-Bus session with gnome-keyring (true), or no D-Bus at all (false). */
  readonly dbus: boolean;
}

/**
 * One user's session: its own HOME, XDG folders, OUTPOST_HOME and, with `dbus`, its own bus and
 * Secret Service. Every process started through it is killed when the test ends.
 */
export class Session {
  readonly outpostHome: string;
  readonly env: NodeJS.ProcessEnv;
  readonly #children: Child[] = [];
  #bus: { process: ChildProcess; closed: Promise<number | null>; daemons: Map<string, number> } | null = null;

  private constructor(t: TestContext) {
    const root = userDir(tempDir(t, 'outpost-keyring-'));
    const home = userDir(path.join(root, 'home'));
    this.outpostHome = userDir(path.join(root, 'outpost'));
    // From scratch, not process.env: no DISPLAY, no DBUS_SESSION_BUS_ADDRESS, no NODE_OPTIONS or
    // OUTPOST_* of the test run, no XDG folders of root.
    this.env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      XDG_DATA_HOME: path.join(home, '.local', 'share'),
      XDG_STATE_HOME: path.join(home, '.local', 'state'),
      XDG_CACHE_HOME: path.join(home, '.cache'),
      XDG_RUNTIME_DIR: userDir(path.join(root, 'runtime')),
      OUTPOST_HOME: this.outpostHome,
    };
    t.after(() => this.#kill());
  }

  /** A session for the test, or null when the tier's tools are missing (the test is then skipped, or failed under CI). */
  static async open(t: TestContext, options: SessionOptions): Promise<Session | null> {
    const missing = missingTools(options.dbus);
    if (missing.length > 0) {
      tierUnavailable(t, 'keyring', `${missing.join(', ')} not found on PATH`, KEYRING_APT_INSTALL);
      return null;
    }
    await assertCheckoutUsable();
    const session = new Session(t);
    if (options.dbus) await session.#startBus();
    return session;
  }

  async #startBus(): Promise<void> {
    const [command, args] = asUser('dbus-run-session', ['--', 'sh', '-c', SESSION_SCRIPT, 'keyring-session', KEYRING_PASSWORD]);
    const child = spawn(command, args, { env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.on('error', (error) => {
      output += `${error}\n`;
    });
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    this.#bus = { process: child, closed, daemons: new Map() };
    const deadline = Date.now() + 15_000;
    let match = output.match(SESSION_READY);
    while (!match) {
      if (child.exitCode !== null || Date.now() > deadline) {
        assert.fail(`the D-Bus session with gnome-keyring did not start (as ${sessionUser.label}):\n${output}`);
      }
      await sleep(20);
      match = output.match(SESSION_READY);
    }
    const [, address, keyring, busDaemon] = match;
    this.#bus.daemons.set('gnome-keyring-daemon', Number(keyring));
    this.#bus.daemons.set('dbus-daemon', Number(busDaemon));
    this.env.DBUS_SESSION_BUS_ADDRESS = address;
    assert.equal(fs.readFileSync(`/proc/${keyring}/comm`, 'utf8').trim(), 'gnome-keyring-d', 'the Secret Service is our gnome-keyring-daemon');
    assert.equal(euidOf(Number(keyring)), sessionUser.uid, `gnome-keyring-daemon runs as ${sessionUser.label}`);
  }

  /** `command args` as the session user, in this session. */
  start(command: string, args: readonly string[]): Child {
    const child = new Child(...asUser(command, args), this.env);
    this.#children.push(child);
    return child;
  }

  run(command: string, args: readonly string[], timeoutMs = 15_000): Promise<Finished> {
    return this.start(command, args).finish(timeoutMs);
  }

  /** `outpost ARGS` on the Node that runs the tests. */
  outpost(args: readonly string[] = []): Child {
    return this.start(process.execPath, [OUTPOST_BIN, ...args]);
  }

  /** An agent that reports running. */
  async startAgent(): Promise<Child> {
    const agent = this.outpost();
    await agent.waitFor(READY, 15_000);
    assert.equal(euidOf(agent.pid), sessionUser.uid, `the agent runs as ${sessionUser.label}, so it is per-user`);
    return agent;
  }

  /** SIGTERM, and the agent must exit 0. */
  async stopAgent(agent: Child): Promise<Finished> {
    agent.kill('SIGTERM');
    const finished = await agent.finish();
    assert.equal(finished.code, 0, `the agent (pid ${agent.pid}) exits 0 on SIGTERM; stderr:\n${finished.stderr}`);
    return finished;
  }

  secretTool(args: readonly string[]): Promise<Finished> {
    return this.run('secret-tool', args);
  }

  file(name: string): string {
    return path.join(this.outpostHome, name);
  }

  /** Writes a file in OUTPOST_HOME as the session user would have: owned by it, mode 0600. */
  plant(name: string, content: string): void {
    fs.writeFileSync(this.file(name), content, { mode: 0o600 });
    if (isRoot) fs.chownSync(this.file(name), sessionUser.uid, sessionUser.gid);
  }

  log(): string {
    return fs.readFileSync(this.file(path.join('logs', 'outpost.log')), 'utf8');
  }

  /**
   * Ends the D-Bus session (dbus-run-session then stops dbus-daemon) and checks that gnome-keyring-daemon
   * and dbus-daemon follow within 5 s; whatever does not is killed, and the test fails.
   */
  async close(): Promise<void> {
    const bus = this.#bus;
    if (!bus) return;
    bus.process.stdin?.end();
    const timer = setTimeout(() => bus.process.kill('SIGKILL'), 10_000);
    const code = await bus.closed;
    clearTimeout(timer);
    assert.equal(code, 0, 'dbus-run-session ends cleanly when its session script does');
    const deadline = Date.now() + 5_000;
    let survivors = [...bus.daemons].filter(([, pid]) => isAlive(pid));
    while (survivors.length > 0 && Date.now() < deadline) {
      await sleep(50);
      survivors = survivors.filter(([, pid]) => isAlive(pid));
    }
    for (const [, pid] of survivors) process.kill(pid, 'SIGKILL');
    this.#bus = null;
    assert.deepEqual(
      survivors.map(([name, pid]) => `${name} (pid ${pid})`),
      [],
      'no daemon of the session outlives it (killed now)',
    );
  }

  /** The test's cleanup, whatever happened: every process of the session dies. */
  async #kill(): Promise<void> {
    for (const child of this.#children) child.kill('SIGKILL');
    const bus = this.#bus;
    if (!bus) return;
    bus.process.stdin?.end();
    await Promise.race([bus.closed, sleep(2_000)]);
    bus.process.kill('SIGKILL');
    for (const pid of bus.daemons.values()) {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  }
}
