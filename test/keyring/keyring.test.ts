/**
 * The keyring tier: the per-user agent's IPC secret in a real credential store (the Secret Service
 * of a throwaway gnome-keyring), and the file fallback when no store answers. See session.ts for
 * how the processes are run (as nobody when the tests run as root).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { test } from 'node:test';
import { StatusLine } from '../../app/common/cli-output.js';
import type { Child } from '../helpers/processes.js';
import { Session, sessionUser } from './session.js';

const ENCODED_SECRET = /^[A-Za-z0-9_-]{43}$/;
const TEST_TIMEOUT_MS = 60_000;

/** The store account of a storage folder: "ipc-" + the first 16 hex digits of sha256(root). */
function accountOf(storageRoot: string): string {
  return `ipc-${createHash('sha256').update(storageRoot).digest('hex').slice(0, 16)}`;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `outpost status` as the session user: exit 0 and the agent's pid. */
async function assertStatusOf(session: Session, agent: Child): Promise<void> {
  const status = await session.outpost(['status']).finish();
  assert.equal(status.code, 0, `status as ${sessionUser.label} exits 0; stderr:\n${status.stderr}`);
  const data = StatusLine.parse(JSON.parse(status.stdout.trim()));
  assert.equal(data.pid, agent.pid, 'status answers for this agent');
  assert.equal(data.storage, session.outpostHome);
}

/** The Secret Service entry's value, which must be a well-formed secret. */
async function storedSecret(session: Session, account: string): Promise<string> {
  const lookup = await session.secretTool(['lookup', 'service', 'Outpost', 'username', account]);
  assert.equal(lookup.code, 0, `secret-tool finds the entry Outpost/${account}; stderr:\n${lookup.stderr}`);
  const value = lookup.stdout.trim();
  assert.match(value, ENCODED_SECRET, 'the entry holds 32 bytes as base64url (43 characters)');
  return value;
}

/** The secret, in any form, is in none of the files and outputs the agent leaves. */
function assertNotLeaked(session: Session, secret: string, agents: readonly Child[]): void {
  const forms = [secret, Buffer.from(secret, 'base64url').toString('hex'), Buffer.from(secret, 'base64url').toString('base64')];
  const places: [string, string][] = [
    ['the log', session.log()],
    ['config.json', fs.readFileSync(session.file('config.json'), 'utf8')],
    ...agents.map((agent): [string, string] => [`the output of pid ${agent.pid}`, agent.stderr + agent.stdout]),
  ];
  for (const [where, text] of places) {
    for (const form of forms) assert.ok(!text.includes(form), `${where} holds no secret`);
  }
}

test('per-user agent with the Secret Service: the secret is in the keyring only, and status authenticates with it', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const session = await Session.open(t, { dbus: true });
  if (!session) return;
  const account = accountOf(session.outpostHome);
  // Left over from a run without D-Bus: once the store answers, the agent must remove it, or
  // clients (which read the file first) would use a stale secret.
  session.plant('ipc.secret', `${randomBytes(32).toString('base64url')}\n`);

  const agent = await session.startAgent();
  assert.match(session.log(), new RegExp(`\\[secret\\] IPC secret created in Secret Service account="${account}"`), 'the log says where the secret is');
  assert.equal(fs.existsSync(session.file('ipc.secret')), false, 'no ipc.secret file while the store is in use');
  await assertStatusOf(session, agent);

  const secret = await storedSecret(session, account);
  await session.stopAgent(agent);
  assertNotLeaked(session, secret, [agent]);
  await session.close();
});

test('rotation: restarting reads the same secret; deleting the entry and restarting makes a new one', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const session = await Session.open(t, { dbus: true });
  if (!session) return;
  const account = accountOf(session.outpostHome);
  const created = new RegExp(`IPC secret created in Secret Service account="${account}"`, 'g');
  const read = new RegExp(`IPC secret read from Secret Service account="${account}"`, 'g');

  const first = await session.startAgent();
  const original = await storedSecret(session, account);
  await session.stopAgent(first);

  const second = await session.startAgent();
  assert.equal(session.log().match(read)?.length, 1, 'a restart reads the stored secret');
  assert.equal(await storedSecret(session, account), original, 'and keeps it');
  await assertStatusOf(session, second);
  await session.stopAgent(second);

  const clear = await session.secretTool(['clear', 'service', 'Outpost', 'username', account]);
  assert.equal(clear.code, 0, `secret-tool clear; stderr:\n${clear.stderr}`);
  assert.equal((await session.secretTool(['lookup', 'service', 'Outpost', 'username', account])).code, 1, 'the entry is gone');

  const third = await session.startAgent();
  assert.equal(session.log().match(created)?.length, 2, 'the restart after the deletion created a new secret in the Secret Service');
  const rotated = await storedSecret(session, account);
  assert.notEqual(rotated, original, 'the new secret differs from the old one');
  assert.equal(fs.existsSync(session.file('ipc.secret')), false, 'still no ipc.secret file');
  await assertStatusOf(session, third);
  await session.stopAgent(third);
  assertNotLeaked(session, original, [first, second, third]);
  assertNotLeaked(session, rotated, [first, second, third]);
  await session.close();
});

test('no D-Bus session: the per-user agent falls back to ipc.secret (0600, the user\'s own) and says why', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const session = await Session.open(t, { dbus: false });
  if (!session) return;
  assert.equal(session.env.DBUS_SESSION_BUS_ADDRESS, undefined);
  const file = session.file('ipc.secret');

  const agent = await session.startAgent();
  assert.match(session.log(), new RegExp(`\\[secret\\] IPC secret created in ${escapeRegExp(file)}: Secret Service did not answer \\(.+\\)`), 'the log says why the file');
  const stat = fs.statSync(file);
  assert.equal((stat.mode & 0o777).toString(8), '600', 'ipc.secret is mode 0600');
  assert.equal(stat.uid, sessionUser.uid, `ipc.secret belongs to ${sessionUser.label}`);
  const secret = fs.readFileSync(file, 'utf8').trim();
  assert.match(secret, ENCODED_SECRET);
  await assertStatusOf(session, agent);

  await session.stopAgent(agent);
  assertNotLeaked(session, secret, [agent]);
});
