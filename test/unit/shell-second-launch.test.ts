import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, OutpostError } from '../../app/base/errors.js';
import { ExitCode } from '../../app/common/exit-codes.js';
import type { Reply } from '../../app/common/ipc.js';
import { AgentClient } from '../../app/main/core/agent-client.js';
import { createPlatform } from '../../app/main/platform/index.js';
import { askToShowDiagnostics, type LaunchOutcome, secondLaunchOutcome } from '../../app/main/shell/second-launch.js';
import { tempDir } from '../helpers/paths.js';
import { outpostEnv, startRunningAgent } from '../helpers/processes.js';

const reply = (status: Reply['status'], message?: string): Reply => ({ v: 1, type: 'reply', status, ...(message !== undefined && { message }) });
const exitOf = (outcome: LaunchOutcome) => (outcome.kind === 'exit' ? outcome.code : 'start');

test('no agent answers: this launch becomes the agent', () => {
  assert.deepEqual(secondLaunchOutcome({ kind: 'not_running' }), { kind: 'start' });
});

test('the running desktop agent shows its window: this launch exits 0', () => {
  const outcome = secondLaunchOutcome({ kind: 'reply', reply: reply('ok') });
  assert.equal(exitOf(outcome), ExitCode.OK);
});

test('a running agent that cannot show a window: its answer is printed and this launch exits 2 (the lock is held)', () => {
  const said = 'this agent runs without a desktop (the `outpost` command): run `outpost diagnostics` for its diagnostics page';
  const headless = secondLaunchOutcome({ kind: 'reply', reply: reply('not_available', said) });
  assert.equal(exitOf(headless), ExitCode.LOCK_HELD);
  assert.equal(
    headless.kind === 'exit' && headless.message,
    `another Outpost agent holds the lock and did not show a window (not_available: ${said})`,
  );
  // An agent of an older version that does not know the command, or one busy in a way it says.
  for (const status of ['bad_request', 'busy_updating'] as const) {
    const outcome = secondLaunchOutcome({ kind: 'reply', reply: reply(status) });
    assert.equal(exitOf(outcome), ExitCode.LOCK_HELD, status);
    assert.match(outcome.kind === 'exit' ? outcome.message : '', new RegExp(`\\(${status}\\)$`));
  }
});

test('an endpoint that does not answer the question: the exit code of what went wrong, the agent left alone', () => {
  const cases = [
    [ErrorCode.IPC_AUTH, ExitCode.AUTH_FAILED],
    [ErrorCode.IPC_TIMEOUT, ExitCode.TIMED_OUT],
    [ErrorCode.IPC_PROTOCOL, ExitCode.SOFTWARE],
  ] as const;
  for (const [code, exit] of cases) {
    const outcome = secondLaunchOutcome({ kind: 'failed', error: new OutpostError(code, `failed with ${code}.`) });
    assert.deepEqual(outcome, { kind: 'exit', code: exit, message: `failed with ${code}.` });
  }
});

test('asking for real: nothing listens, then a headless agent, which has no window to show', async (t) => {
  const home = tempDir(t);
  const env = outpostEnv(home);
  const client = () => new AgentClient(createPlatform(process.platform, env), env);
  assert.deepEqual(await askToShowDiagnostics(client()), { kind: 'not_running' });

  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  const answer = await askToShowDiagnostics(client());
  assert.equal(answer.kind === 'reply' && answer.reply.status, 'not_available');
  const outcome = secondLaunchOutcome(answer);
  assert.equal(exitOf(outcome), ExitCode.LOCK_HELD);
  assert.match(outcome.kind === 'exit' ? outcome.message : '', /run `outpost diagnostics` for its diagnostics page\)$/, 'the agent says what to run instead');
});
