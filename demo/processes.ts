/** Starting the story's processes and waiting on them, each wait with a deadline that says what it waited for. */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Failure } from './failure.js';

export interface Spawned {
  readonly child: ChildProcess;
  /** What it printed so far, stdout and stderr as they came. */
  readonly output: () => string;
  readonly stdout: () => string;
  readonly exited: Promise<number | null>;
}

/** Every process the story started: whatever still runs of them is killed when the story stops. */
export class Processes {
  readonly #spawned: Spawned[] = [];

  spawn(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Spawned {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stdout = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      output += d;
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (output += d));
    const exited = new Promise<number | null>((resolve) => {
      child.on('error', (error) => {
        output += `\n${error.message}`;
        resolve(null);
      });
      child.on('close', (code) => resolve(code));
    });
    const spawned = { child, output: () => output, stdout: () => stdout, exited };
    this.#spawned.push(spawned);
    return spawned;
  }

  /** A Node script run to its end (`what` names it in a timeout): its exit code and what it printed. */
  async run(script: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number, what: string): Promise<{ code: number | null; stdout: string; output: string }> {
    const run = this.spawn(process.execPath, [script, ...args], env);
    const code = await within(run.exited, timeoutMs, what);
    return { code, stdout: run.stdout(), output: run.output() };
  }

  /** A tool that runs to its end (outpost-release): its stdout, or a failure with what it said. */
  async tool(script: string, args: readonly string[]): Promise<string> {
    const { code, stdout, output } = await this.run(script, args, { ...process.env }, 60_000, `${path.basename(script)} ${args[0]}`);
    if (code !== 0) throw new Failure(`${path.basename(script, '.js')} ${args[0]} exited ${code}:\n${output}`);
    return stdout;
  }

  /** SIGKILL to every process started here that still runs, but `spared`. */
  killRunning(spared: Spawned | undefined): void {
    for (const run of this.#spawned) if (run !== spared && run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
  }
}

/** The first match of `pattern` in what `run` prints; a failure with what it said if it exits or `timeoutMs` passes first. */
export async function waitOutput(run: Spawned, pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
  let exited = false;
  void run.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = run.output().match(pattern);
    if (match) return match;
    if (exited || Date.now() > deadline) throw new Failure(`${exited ? 'the process exited' : 'timed out'} waiting for ${what}; it said:\n${run.output()}`);
    await sleep(10);
  }
}

/** The first truthy value of `probe`, asked every 20 ms; after `timeoutMs`, a failure ending with `context()`. */
export async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | false | undefined | null | Promise<T | false | undefined | null>,
  context: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Failure(`timed out after ${timeoutMs / 1000} s waiting for ${what}; ${context()}`);
    await sleep(20);
  }
}

export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `name` to `pid`, which may be gone already. */
export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}
