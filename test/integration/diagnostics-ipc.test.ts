/**
 * The agent's side of the diagnostics page, over its real IPC: what `outpost diagnostics` reads of a
 * running `outpost` (the view, the log tail that follows new lines, the support bundle), and what the
 * IPC refuses (arguments that the proof does not cover, a window a headless agent does not have).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { storagePaths } from '../../app/base/storage-layout.js';
import { DiagnosticsView } from '../../app/common/diagnostics.js';
import { AgentClient } from '../../app/main/core/agent-client.js';
import { AgentOverIpc } from '../../app/main/core/diagnostics/agent-over-ipc.js';
import { clientProof, newNonce } from '../../app/main/core/ipc-auth.js';
import { DEFAULT_CONFIG } from '../../app/main/core/config-schema.js';
import { createPlatform } from '../../app/main/platform/index.js';
import { ipcSocketOf } from '../helpers/agent.js';
import { RawPeer } from '../helpers/ipc-peer.js';
import { tempDir } from '../helpers/paths.js';
import { outpostEnv, runOutpost, startOutpost, startRunningAgent } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';

function apiFor(home: string): AgentOverIpc {
  const env = outpostEnv(home);
  return new AgentOverIpc(new AgentClient(createPlatform(process.platform, env), env));
}

test('diagnostics over the IPC: the view of a real agent, a log tail that returns only new lines, a redacted bundle', async (t) => {
  const home = tempDir(t);
  // Credentials in a URL must not leave in the bundle (nor in the log).
  const config = { ...DEFAULT_CONFIG, backend: { url: 'http://admin:hunter2@127.0.0.1:9', ws_url: 'ws://127.0.0.1:9/ws' } };
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  fs.writeFileSync(storagePaths(home).config, JSON.stringify(config));
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  const api = apiFor(home);

  const first = DiagnosticsView.parse(await api.read({ log_after: null }));
  assert.equal(first.agent.pid, agent.pid);
  assert.equal(first.agent.state, 'IDLE');
  assert.equal(first.agent.shell, 'headless');
  assert.equal(first.agent.storage, home);
  assert.equal(first.lock?.pid, agent.pid, 'the lock holder is the agent');
  assert.equal(first.update.enabled, false, 'no installation folder and no trust: updates are off');
  assert.ok(first.log.lines.some((line) => /Outpost .* starting/.test(line.text)), 'the first read has the start of the log');
  assert.ok(first.log.lines.every((line) => line.at !== '' && ['error', 'warn', 'info', 'debug'].includes(line.level)));

  // `outpost status` makes the agent log a line: the next read returns it, and nothing it returned before.
  assert.equal((await runOutpost(home, ['status'])).code, 0);
  const next = await api.read({ log_after: first.log.cursor });
  assert.ok(next.log.lines.length >= 1, 'the line logged since is returned');
  assert.ok(next.log.lines.some((line) => line.text.includes('IPC command status')));
  assert.ok(!next.log.lines.some((line) => /Outpost .* starting/.test(line.text)), 'nothing read before comes again');
  const idle = await api.read({ log_after: next.log.cursor });
  assert.deepEqual(idle.log.lines, [], 'no new line, none returned');

  const bundle = await api.bundle();
  assert.match(bundle.file_name, /^outpost-diagnostics-\d+\.\d+\.\d+-[\dT-]+Z\.json$/);
  const contents = JSON.parse(bundle.text) as { config: { backend: { url: string } }; log: string[]; state: { agent: { pid: number } } };
  assert.equal(contents.state.agent.pid, agent.pid);
  assert.ok(contents.log.length > 3);
  assert.equal(contents.config.backend.url, 'http://***@127.0.0.1:9');
  assert.doesNotMatch(bundle.text, /hunter2/);

  assert.deepEqual(await api.openLogFolder(), { ok: false, message: `a headless agent opens no folders; its logs are in ${storagePaths(home).logs}` });
  assert.deepEqual(await api.checkNow(), { ok: false, message: 'updates are off on this agent (see its log)' });
});

test('the IPC binds arguments into the proof, checks them against the command, and a headless agent has no window to show', async (t) => {
  const home = tempDir(t);
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  const secret = Buffer.from(fs.readFileSync(path.join(home, 'ipc.secret'), 'utf8').trim(), 'base64url');
  const exchange = async (request: (nonces: { server: string; client: string }) => Record<string, unknown>) => {
    const peer = await RawPeer.connect(ipcSocketOf(home));
    t.after(() => peer.destroy());
    const hello = { v: 1, type: 'hello', nonce: newNonce(), client_pid: process.pid };
    peer.send(hello);
    const challenge = await peer.line(0);
    peer.send({ v: 1, type: 'request', ...request({ server: challenge.nonce as string, client: hello.nonce }) });
    return peer.line(1);
  };
  const args = JSON.stringify({ log_after: null });
  const tampered = await exchange((n) => ({
    command: 'diagnostics',
    args: JSON.stringify({ log_after: { file: 'x', offset: 0 } }),
    proof: clientProof(secret, n.server, n.client, 'diagnostics', args),
  }));
  assert.equal(tampered.status, 'invalid_secret', 'arguments other than those proved are refused');
  const missing = await exchange((n) => ({ command: 'diagnostics', proof: clientProof(secret, n.server, n.client, 'diagnostics') }));
  assert.equal(missing.status, 'bad_request');
  assert.match(String(missing.message), /"diagnostics" needs its arguments/);
  const malformed = await exchange((n) => ({ command: 'diagnostics', args: '{"log_after":7}', proof: clientProof(secret, n.server, n.client, 'diagnostics', '{"log_after":7}') }));
  assert.equal(malformed.status, 'bad_request');
  assert.match(String(malformed.message), /bad arguments for "diagnostics"/);
  const extra = await exchange((n) => ({ command: 'status', args: '{}', proof: clientProof(secret, n.server, n.client, 'status', '{}') }));
  assert.equal(extra.status, 'bad_request');
  assert.match(String(extra.message), /"status" takes no arguments/);
  const show = await exchange((n) => ({ command: 'show_diagnostics', proof: clientProof(secret, n.server, n.client, 'show_diagnostics') }));
  assert.equal(show.status, 'not_available');
  assert.match(String(show.message), /run `outpost diagnostics`/);
  const proved = await exchange((n) => ({ command: 'diagnostics', args, proof: clientProof(secret, n.server, n.client, 'diagnostics', args) }));
  assert.equal(proved.status, 'ok');
  assert.equal(DiagnosticsView.parse(proved.view).agent.pid, agent.pid);
});

test('outpost diagnostics --open hands the one-time link to the desktop opener; Ctrl+C: exit 0', async (t) => {
  const home = tempDir(t);
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  // A stand-in for the desktop's opener (there is no desktop here): it writes down what it was asked to open.
  const bin = tempDir(t);
  const opened = path.join(bin, 'opened.txt');
  fs.writeFileSync(path.join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > ${JSON.stringify(opened)}\n`, { mode: 0o755 });
  const served = startOutpost(home, ['diagnostics', '--open'], { PATH: `${bin}${path.delimiter}${process.env.PATH}` });
  t.after(() => served.kill('SIGKILL'));
  const [link] = await served.waitFor(/http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}/);
  // stderr and stdout are two pipes: the note may come after the link.
  await served.waitFor(/the link works once, from this machine only/);
  assert.match(served.stderr, /the link works once, from this machine only/);
  const asked = await until('the opener to be run', () => fs.existsSync(opened) && fs.readFileSync(opened, 'utf8'));
  assert.equal(asked, link);
  served.kill('SIGINT');
  assert.equal((await served.finish()).code, 0);
});

test('outpost diagnostics with no agent running: exit 1, nothing served', async (t) => {
  const home = tempDir(t);
  const result = await runOutpost(home, ['diagnostics']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /no agent is running for /);
  assert.equal(result.stdout, '');
});
