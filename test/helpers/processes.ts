import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { RUNNING_LINE } from '../../app/common/cli-output.js';
import { OUTPOST_BIN } from './paths.js';

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A real child process whose output the test can wait on. */
export class Child {
  readonly process: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Finished>;

  constructor(command: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd?: string) {
    this.process = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd && { cwd }) });
    this.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
    });
    this.process.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.process.on('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  get pid(): number {
    if (this.process.pid === undefined) throw new Error('process did not start');
    return this.process.pid;
  }

  /** Waits until stderr+stdout match, or fails with what the process printed. */
  async waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => {
      exited = true;
    });
    for (;;) {
      const match = (this.stderr + this.stdout).match(pattern);
      if (match) return match;
      if (exited || Date.now() > deadline) {
        throw new Error(`${exited ? 'process exited' : 'timed out'} before ${pattern}; stderr:\n${this.stderr}\nstdout:\n${this.stdout}`);
      }
      await sleep(20);
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.process.kill(signal);
  }

  /** Waits for the exit, killing the process if it takes longer than the timeout. */
  async finish(timeoutMs = 15_000): Promise<Finished> {
    const timer = setTimeout(() => this.process.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export function outpostEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OUTPOST_HOME: home, ...extra };
  delete env.OUTPOST_LOG_LEVEL;
  if (extra.OUTPOST_LOG_LEVEL) env.OUTPOST_LOG_LEVEL = extra.OUTPOST_LOG_LEVEL;
  return env;
}

/** `outpost ARGS` as a real process on the Node that runs the tests (`entry`: another script that runs it). */
export function startOutpost(home: string, args: readonly string[] = [], extra: NodeJS.ProcessEnv = {}, entry = OUTPOST_BIN): Child {
  return new Child(process.execPath, [entry, ...args], outpostEnv(home, extra));
}

export function runOutpost(home: string, args: readonly string[] = [], extra: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<Finished> {
  return startOutpost(home, args, extra).finish(timeoutMs);
}

/** Starts an agent and waits until it reports running (IDLE). */
export async function startRunningAgent(home: string, extra: NodeJS.ProcessEnv = {}, entry = OUTPOST_BIN): Promise<Child> {
  const child = startOutpost(home, [], extra, entry);
  await child.waitFor(READY);
  return child;
}

export const READY = RUNNING_LINE;
