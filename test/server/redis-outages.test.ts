/**
 * A node's one Redis state (server/redis-outages.ts), shared by its publishes, agents and reports: an
 * outage is one line however many clients notice it, "back" only once every client is, and /health's
 * `redis` follows. The clients here are EventEmitters emitting what @redis/client emits ('error',
 * 'ready'); the integration tests (report-nodes, agent-auth-nodes) stop a real redis-server.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { RedisOutages } from '../../server/redis-outages.js';

function outages(): { state: RedisOutages; lines: string[]; clients: EventEmitter[] } {
  const lines: string[] = [];
  const clients = [new EventEmitter(), new EventEmitter(), new EventEmitter()];
  const state = new RedisOutages('redis://127.0.0.1:6379', (line) => lines.push(line), ...clients);
  state.waits('pushes wait');
  state.waits('reports are answered 503');
  return { state, lines, clients };
}

test('connecting until every client is ready; an outage is one line naming what waits, and back once every client is', () => {
  const { state, lines, clients } = outages();
  const [a, b, c] = clients as [EventEmitter, EventEmitter, EventEmitter];
  assert.equal(state.state, 'connecting');
  a.emit('ready');
  b.emit('ready');
  assert.equal(state.state, 'connecting', 'one client still connecting');
  c.emit('ready');
  assert.equal(state.state, 'ready');
  assert.deepEqual(lines, [], 'a first connection is no news');

  a.emit('error', new Error('connect ECONNREFUSED'));
  c.emit('error', new Error('connect ECONNREFUSED'));
  a.emit('error', new Error('connect ECONNREFUSED'));
  assert.equal(state.state, 'unreachable');
  assert.deepEqual(lines, ['redis: redis://127.0.0.1:6379 unreachable (connect ECONNREFUSED); meanwhile pushes wait; reports are answered 503; the clients reconnect by themselves']);

  a.emit('ready');
  assert.equal(state.state, 'unreachable', 'c has not reconnected yet');
  c.emit('ready');
  assert.equal(state.state, 'ready');
  assert.deepEqual(lines.slice(1), ['redis: redis://127.0.0.1:6379 reachable again']);
});

test('a command without an answer (Redis hung, its clients still connected) is an outage until a command is answered or a client reconnects', () => {
  const { state, lines, clients } = outages();
  for (const client of clients) client.emit('ready');
  state.commandFailed('no answer within 5000 ms');
  state.commandFailed('no answer within 5000 ms');
  assert.equal(state.state, 'unreachable');
  assert.equal(lines.length, 1);
  state.commandAnswered();
  assert.equal(state.state, 'ready');
  state.commandFailed('no answer within 5000 ms');
  clients[2]?.emit('ready');
  assert.equal(state.state, 'ready', 'a reconnection clears it');
  assert.deepEqual(
    lines.map((line) => line.split(' (')[0]),
    ['redis: redis://127.0.0.1:6379 unreachable', 'redis: redis://127.0.0.1:6379 reachable again', 'redis: redis://127.0.0.1:6379 unreachable', 'redis: redis://127.0.0.1:6379 reachable again'],
  );
});

test('closed: a closing node\'s clients fail silently', () => {
  const { state, lines, clients } = outages();
  for (const client of clients) client.emit('ready');
  state.close();
  clients[0]?.emit('error', new Error('Socket closed unexpectedly'));
  assert.deepEqual(lines, []);
});
