import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { storagePaths } from '../../app/base/storage-layout.js';

const lockFileOf = (home: string) => storagePaths(home).lock;
import { IPC_MAX_CONNECTIONS, IPC_MAX_MESSAGE_BYTES } from '../../app/common/ipc.js';
import { clientProof, newNonce } from '../../app/main/core/ipc-auth.js';
import { ipcSocketOf, lockRecordOf, logOf, statusOf } from '../helpers/agent.js';
import { tempDir } from '../helpers/paths.js';
import { residentBytes, RawPeer } from '../helpers/ipc-peer.js';
import { type Child, READY, runOutpost, startOutpost, startRunningAgent } from '../helpers/processes.js';

const secretOf = (home: string) => fs.readFileSync(path.join(home, 'ipc.secret'), 'utf8').trim();

/** A well-behaved client written by hand, returning what it sent so that a test can replay it. */
async function authenticatedExchange(endpoint: string, secret: Buffer, command: 'status' | 'force_restart') {
  const peer = await RawPeer.connect(endpoint);
  const hello = { v: 1, type: 'hello', nonce: newNonce(), client_pid: process.pid };
  peer.send(hello);
  const challenge = await peer.line(0);
  const request = { v: 1, type: 'request', command, proof: clientProof(secret, challenge.nonce as string, hello.nonce, command) };
  peer.send(request);
  const reply = await peer.line(1);
  peer.destroy();
  return { sent: [hello, request], reply };
}

test('status: one JSON object with the fields of CONTRACT.md; exit 1 with no agent running', async (t) => {
  const home = tempDir(t);
  const none = await runOutpost(home, ['status']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no agent is running for /);
  assert.equal(fs.existsSync(home) && fs.readdirSync(home).length, 0, 'status creates nothing');

  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  const status = await statusOf(home);
  assert.deepEqual(Object.keys(status).sort(), ['autostart', 'last_update_check', 'pid', 'state', 'storage', 'update', 'uptime_s', 'version']);
  assert.equal(status.pid, agent.pid);
  assert.equal(status.state, 'IDLE');
  assert.equal(status.storage, home);
  assert.equal((fs.statSync(ipcSocketOf(home)).mode & 0o777).toString(8), '600');
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
  assert.equal(fs.existsSync(ipcSocketOf(home)), false, 'the socket goes with the agent');
  assert.equal((await runOutpost(home, ['status'])).code, 1);
});

test('--force 20 times in a row: each agent hands over to the next; no stray process, no leaked endpoint, no secret in logs', async (t) => {
  const home = tempDir(t);
  const all: Child[] = [];
  t.after(() => {
    for (const child of all) child.kill('SIGKILL');
  });
  let current = await startRunningAgent(home);
  all.push(current);
  for (let round = 1; round <= 20; round++) {
    const next = startOutpost(home, ['--force']);
    all.push(next);
    const [, readyPid] = await next.waitFor(READY, 20_000);
    assert.equal(Number(readyPid), next.pid, `round ${round}: the new instance runs`);
    const previous = await current.finish();
    assert.equal(previous.code, 0, `round ${round}: the old instance exits cleanly`);
    assert.match(previous.stderr, new RegExp(`stopped \\(force restart requested by pid ${next.pid}\\)`));
    assert.equal(lockRecordOf(home).pid, next.pid);
    assert.equal((await statusOf(home)).pid, next.pid, `round ${round}: status shows the new instance`);
    current = next;
  }
  current.kill('SIGTERM');
  assert.equal((await current.finish()).code, 0);
  for (const child of all) assert.notEqual(child.process.exitCode, null, `pid ${child.pid} has exited`);
  assert.equal(fs.existsSync(ipcSocketOf(home)), false, 'no socket left behind');
  assert.equal(fs.existsSync(path.join(home, 'agent.lock')), false, 'no lock left behind');

  const log = logOf(home);
  assert.equal(log.match(/IPC command force_restart/g)?.length, 20, 'every old instance logged the command');
  assert.equal(log.match(/state IDLE -> FORCE_RESTARTING/g)?.length, 20);
  const secret = secretOf(home);
  for (const [what, text] of [['the log', log], ['config.json', fs.readFileSync(storagePaths(home).config, 'utf8')]] as const) {
    assert.ok(!text.includes(secret) && !text.includes(Buffer.from(secret, 'base64url').toString('hex')), `${what} holds no secret`);
  }
});

test('--quit: the agent shuts down gracefully and is gone when the command returns; with none running, nothing to stop', async (t) => {
  const home = tempDir(t);
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  const quit = await runOutpost(home, ['--quit']);
  assert.equal(quit.code, 0, quit.stderr);
  assert.equal(quit.stderr, `outpost: pid ${agent.pid} has shut down\n`);
  const stopped = await agent.finish();
  assert.equal(stopped.code, 0, 'a clean exit');
  assert.match(stopped.stderr, /stopped \(quit requested by pid \d+\)/);
  assert.match(logOf(home), /IPC command quit/);
  assert.equal(fs.existsSync(lockFileOf(home)), false, 'the lock released');
  const none = await runOutpost(home, ['--quit']);
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stderr, /^outpost: no agent was running for .*; nothing to stop\n$/);
  assert.equal((await runOutpost(home, ['--quit', '--force'])).code, 64, 'one option at a time');
});

test('--force with no agent running simply starts', async (t) => {
  const home = tempDir(t);
  const agent = startOutpost(home, ['--force']);
  t.after(() => agent.kill('SIGKILL'));
  await agent.waitFor(READY);
  assert.match(agent.stderr, /no agent was running; starting/);
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
});

test('a client with the wrong secret: exit 4, and the agent is untouched', async (t) => {
  const home = tempDir(t);
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  const real = secretOf(home);
  fs.writeFileSync(path.join(home, 'ipc.secret'), `${newNonce()}\n`);

  const forced = await runOutpost(home, ['--force']);
  assert.equal(forced.code, 4, forced.stderr);
  assert.match(forced.stderr, /could not prove it knows this installation's IPC secret/);
  const status = await runOutpost(home, ['status']);
  assert.equal(status.code, 4);
  assert.equal(agent.process.exitCode, null);
  assert.equal(lockRecordOf(home).pid, agent.pid);

  fs.writeFileSync(path.join(home, 'ipc.secret'), `${real}\n`);
  assert.equal((await statusOf(home)).state, 'IDLE');
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
});

test('the agent refuses a wrong proof and a replayed exchange, and binds the command into the proof', async (t) => {
  const home = tempDir(t);
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  const endpoint = ipcSocketOf(home);
  const secret = Buffer.from(secretOf(home), 'base64url');

  const wrong = await authenticatedExchange(endpoint, Buffer.alloc(32, 7), 'force_restart');
  assert.equal(wrong.reply.status, 'invalid_secret');

  const recorded = await authenticatedExchange(endpoint, secret, 'status');
  assert.equal(recorded.reply.status, 'ok');
  // Replayed word for word: the server's nonce is new, so the recorded proof no longer fits.
  const replay = await RawPeer.connect(endpoint);
  for (const line of recorded.sent) replay.send(line);
  assert.equal((await replay.line(1)).status, 'invalid_secret');
  replay.destroy();
  // A proof for `status` does not authorise `force_restart` in the same exchange.
  const peer = await RawPeer.connect(endpoint);
  const hello = { v: 1, type: 'hello', nonce: newNonce(), client_pid: process.pid };
  peer.send(hello);
  const challenge = await peer.line(0);
  peer.send({ v: 1, type: 'request', command: 'force_restart', proof: clientProof(secret, challenge.nonce as string, hello.nonce, 'status') });
  assert.equal((await peer.line(1)).status, 'invalid_secret');
  peer.destroy();

  assert.equal(agent.process.exitCode, null, 'no replay stopped the agent');
  assert.match(logOf(home), /IPC request refused: invalid proof/);
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
});

test('a squatter on the endpoint: clients refuse it and send it nothing derived from the secret; the agent will not take the endpoint over', async (t) => {
  const home = tempDir(t);
  const first = await startRunningAgent(home); // makes the storage folder and the secret
  first.kill('SIGTERM');
  await first.finish();

  const received: string[] = [];
  const squatter = net.createServer((socket) => {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received.push(...chunk.split('\n').filter(Boolean));
      // It cannot compute the proof, so it sends a plausible-looking one.
      socket.write(`${JSON.stringify({ v: 1, type: 'challenge', nonce: newNonce(), proof: newNonce() })}\n`);
    });
  });
  await new Promise<void>((resolve) => squatter.listen(ipcSocketOf(home), resolve));
  t.after(() => squatter.close());

  const status = await runOutpost(home, ['status']);
  assert.equal(status.code, 4, status.stderr);
  assert.match(status.stderr, /could not prove .* or something else is squatting on the endpoint\. Nothing was sent to it\./);
  const forced = await runOutpost(home, ['--force']);
  assert.equal(forced.code, 4, forced.stderr);
  assert.equal(received.length, 2, 'one line from each client');
  for (const line of received) {
    const message = JSON.parse(line);
    assert.deepEqual(Object.keys(message).sort(), ['client_pid', 'nonce', 'type', 'v'], 'a hello, nothing more');
    assert.equal(message.type, 'hello');
  }

  const agent = await runOutpost(home);
  assert.equal(agent.code, 73, agent.stderr);
  assert.match(agent.stderr, /Another process is already listening on .*ipc\.sock; refusing to take it over/);
  assert.ok(fs.statSync(ipcSocketOf(home)).isSocket(), 'the squatter keeps its socket');
  assert.equal(fs.existsSync(path.join(home, 'agent.lock')), false, 'the refused agent released its lock');
});

test('a socket left by a SIGKILLed agent is removed by the next one', async (t) => {
  const home = tempDir(t);
  const first = await startRunningAgent(home);
  first.kill('SIGKILL');
  await first.finish();
  assert.ok(fs.statSync(ipcSocketOf(home)).isSocket(), 'the killed agent left its socket');
  assert.equal((await runOutpost(home, ['status'])).code, 1, 'a dead socket is "not running"');

  const second = await startRunningAgent(home);
  t.after(() => second.kill('SIGKILL'));
  assert.match(logOf(home), /replacing a stale IPC socket left by an agent that did not shut down/);
  assert.equal((await statusOf(home)).pid, second.pid);
  second.kill('SIGTERM');
  assert.equal((await second.finish()).code, 0);
});

test('garbage, oversized, slow-loris and 200 concurrent connections: status is served throughout, every flood connection is closed by the agent, and its resident memory grows by under 40 MB', async (t) => {
  const home = tempDir(t);
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  const endpoint = ipcSocketOf(home);
  await statusOf(home);
  const before = await residentBytes(agent.pid);

  const peers = await Promise.all(Array.from({ length: 200 }, () => RawPeer.connect(endpoint)));
  const timers: NodeJS.Timeout[] = [];
  peers.forEach((peer, i) => {
    if (i % 4 === 0) peer.send('this is not json\n');
    if (i % 4 === 1) peer.send('x'.repeat(4 * IPC_MAX_MESSAGE_BYTES));
    if (i % 4 === 2) timers.push(setInterval(() => peer.socket.writable && peer.socket.write('{'), 200)); // slow loris: a byte at a time, no newline
    // i % 4 === 3: connects and says nothing
  });
  t.after(() => {
    for (const timer of timers) clearInterval(timer);
    for (const peer of peers) peer.destroy();
  });

  for (let i = 0; i < 3; i++) assert.equal((await statusOf(home)).pid, agent.pid, 'status is served during the flood');

  const garbage = await RawPeer.connect(endpoint);
  garbage.send('{"v":1,"type":"hello"}\n');
  const refusal = await garbage.line(0);
  assert.equal(refusal.status, 'bad_request');
  assert.match(String(refusal.message), /expected hello: nonce/);

  // Idle connections time out, slow ones hit the total limit: within a few seconds all are gone.
  const closed = await Promise.all(peers.map((peer) => peer.waitClosed(15_000)));
  assert.equal(closed.filter((c) => !c).length, 0, 'every flood connection was closed by the agent');
  const after = await residentBytes(agent.pid);
  assert.ok(after - before < 40 * 1024 * 1024, `resident memory grew by ${((after - before) / 1048576).toFixed(1)} MB`);
  assert.equal((await statusOf(home)).pid, agent.pid);
  const log = logOf(home);
  assert.match(log, new RegExp(`IPC connection limit \\(${IPC_MAX_CONNECTIONS}\\) reached`));
  assert.ok((log.match(/IPC connection limit/g)?.length ?? 0) <= 3, 'the flood is logged as a flood, not line by line');
  assert.match(log, /IPC message too large/);
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
});

test('rotation: delete the secret and restart; the new secret differs and works', async (t) => {
  const home = tempDir(t);
  const first = await startRunningAgent(home);
  t.after(() => first.kill('SIGKILL'));
  const old = secretOf(home);
  first.kill('SIGTERM');
  assert.equal((await first.finish()).code, 0);

  fs.rmSync(path.join(home, 'ipc.secret'));
  const second = await startRunningAgent(home);
  t.after(() => second.kill('SIGKILL'));
  const fresh = secretOf(home);
  assert.notEqual(fresh, old);
  assert.equal((fs.statSync(path.join(home, 'ipc.secret')).mode & 0o777).toString(8), '600');
  assert.equal((await statusOf(home)).pid, second.pid);
  const stale = await authenticatedExchange(ipcSocketOf(home), Buffer.from(old, 'base64url'), 'status');
  assert.equal(stale.reply.status, 'invalid_secret', 'the old secret no longer opens anything');
  second.kill('SIGTERM');
  assert.equal((await second.finish()).code, 0);
});

test('a damaged secret file: the agent refuses to start (78) with one clear line, and the file is kept', async (t) => {
  const home = tempDir(t);
  const first = await startRunningAgent(home);
  first.kill('SIGTERM');
  await first.finish();
  const file = path.join(home, 'ipc.secret');
  fs.writeFileSync(file, 'not a secret\n');

  const result = await runOutpost(home);
  assert.equal(result.code, 78, result.stderr);
  assert.match(result.stderr, /^outpost: The IPC secret in .*ipc\.secret is damaged .* Delete it and restart the agent to make a new one\.\n$/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'not a secret\n');
  assert.equal(fs.existsSync(path.join(home, 'agent.lock')), false, 'the lock was released');
});

test('an agent that accepts but never answers (frozen): status and --force exit 5, and --force does not start', async (t) => {
  const home = tempDir(t);
  const agent = await startRunningAgent(home);
  t.after(() => agent.kill('SIGKILL'));
  agent.kill('SIGSTOP');
  t.after(() => agent.kill('SIGCONT'));
  const [status, forced] = await Promise.all([runOutpost(home, ['status'], {}, 30_000), runOutpost(home, ['--force'], {}, 30_000)]);
  assert.equal(status.code, 5, status.stderr);
  assert.match(status.stderr, /did not answer "status" within 5000 ms/);
  assert.equal(forced.code, 5, forced.stderr);
  assert.match(forced.stderr, /did not answer "force_restart" within 10000 ms/);
  assert.doesNotMatch(forced.stderr, /running \(pid/);
  agent.kill('SIGCONT');
  assert.equal((await statusOf(home)).pid, agent.pid, 'the agent, woken, was left as it was');
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
});
