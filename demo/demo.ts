/**
 * `npm run demo`: what Outpost can do so far, end to end with real processes in a temporary home.
 * It grows with every issue until it is the update story of CONTRACT.md. Exits 0 only if every step
 * behaved as it should.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUNNING_LINE } from '../app/common/cli-output.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'outpost.js');
const started = Date.now();
const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number, text: string) => (useColor ? `\u001b[${code}m${text}\u001b[0m` : text);

function step(text: string): void {
  const at = ((Date.now() - started) / 1000).toFixed(2).padStart(6);
  process.stdout.write(`${paint(2, `[${at}s]`)} ${text}\n`);
}

function ok(text: string): void {
  step(`${paint(32, 'ok')}  ${text}`);
}

class DemoFailure extends Error {}

function expect(condition: boolean, text: string): void {
  if (!condition) throw new DemoFailure(text);
  ok(text);
}

interface Running {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function launch(home: string, label: string, args: readonly string[] = []): Running {
  step(`${paint(36, '$')} OUTPOST_HOME=${home} outpost${args.map((a) => ` ${a}`).join('')} ${paint(2, `(${label})`)}`);
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, OUTPOST_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitFor(run: Running, pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let done = false;
  void run.exited.then(() => (done = true));
  while (Date.now() < deadline) {
    const match = run.output().match(pattern);
    if (match) return match;
    if (done) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new DemoFailure(`expected ${pattern} from the agent; it said:\n${run.output()}`);
}

function quote(text: string): void {
  for (const line of text.trim().split('\n')) process.stdout.write(`         ${paint(2, '│')} ${line}\n`);
}

async function main(): Promise<number> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-demo-'));
  const live: Running[] = [];
  process.stdout.write(`${paint(1, 'Outpost demo')}: single instance, crash recovery, status and --force over authenticated IPC (storage in ${home})\n\n`);
  try {
    step('1. Start the agent.');
    const first = launch(home, 'first instance');
    live.push(first);
    const firstPid = Number((await waitFor(first, RUNNING_LINE))[1]);
    ok(`agent A is running as pid ${firstPid} and holds ${path.join(home, 'agent.lock')}`);
    quote(fs.readFileSync(path.join(home, 'agent.lock'), 'utf8').trim());

    step('2. Launch a second copy on the same storage folder.');
    const second = launch(home, 'second instance');
    const secondCode = await second.exited;
    quote(second.output());
    expect(secondCode === 2, 'the second copy exits 2 ("another instance holds the lock")');
    expect(second.output().includes(`pid ${firstPid}`), `and names the holder, pid ${firstPid}; A is untouched`);

    step(`3. Crash agent A: kill -9 ${firstPid} (no chance to clean up; its lock file stays behind).`);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(fs.existsSync(path.join(home, 'agent.lock')), 'the stale lock file is still there');

    step('4. Start the agent again.');
    const t0 = Date.now();
    const third = launch(home, 'after the crash');
    live.push(third);
    const thirdPid = Number((await waitFor(third, RUNNING_LINE))[1]);
    ok(`agent C (pid ${thirdPid}) recovered the lock in ${Date.now() - t0} ms, without waiting for the lock to age out`);
    const log = fs.readFileSync(path.join(home, 'logs', 'outpost.log'), 'utf8');
    quote(log.split('\n').filter((l) => /lock is stale|taken over/.test(l)).join('\n'));

    step('5. Ask the running agent for its status (over the authenticated local socket).');
    const status = launch(home, 'status', ['status']);
    const statusCode = await status.exited;
    quote(status.output());
    expect(statusCode === 0 && JSON.parse(status.output()).pid === thirdPid, `status answers: agent C, pid ${thirdPid}, ${JSON.parse(status.output()).state}`);

    step('6. Replace agent C with a new instance: outpost --force.');
    const t1 = Date.now();
    const fourth = launch(home, 'forced restart', ['--force']);
    live.push(fourth);
    const fourthPid = Number((await waitFor(fourth, RUNNING_LINE))[1]);
    const thirdCode = await third.exited;
    quote(third.output().split('\n').filter((l) => /stopped/.test(l)).join('\n'));
    expect(thirdCode === 0, 'C was asked to shut down, did so cleanly (exit 0) and released the lock');
    ok(`agent D (pid ${fourthPid}) took over in ${Date.now() - t1} ms`);

    step(`7. Stop agent D gracefully (SIGTERM).`);
    fourth.child.kill('SIGTERM');
    const code = await fourth.exited;
    expect(code === 0, 'D shut down cleanly (exit 0)');
    expect(!fs.existsSync(path.join(home, 'agent.lock')), 'and released the lock');

    process.stdout.write(`\n${paint(32, 'Demo passed')} in ${((Date.now() - started) / 1000).toFixed(1)} s. The agent's log: ${path.join(home, 'logs', 'outpost.log')}\n`);
    return 0;
  } catch (error) {
    process.stdout.write(`\n${paint(31, 'Demo FAILED')}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    for (const run of live) run.child.kill('SIGKILL');
  }
}

process.exitCode = await main();
