/**
 * The agent's side of authentication (app/common/enrollment.ts), for real: `outpost
 * --set-enrollment-secret` as an installer runs it, a real agent process enrolling at a real
 * `outpost-server --enrollment-secrets`, its token on reports and on the push channel, a server that
 * lost its agents, and the operator's revocation.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { storagePaths } from '../../app/base/storage-layout.js';
import { ErrorReport } from '../../app/common/reports.js';
import { logOf } from '../helpers/agent.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { runOutpost, startRunningAgent } from '../helpers/processes.js';
import { ReleaseLab } from '../helpers/release-lab.js';
import { until } from '../helpers/wait.js';
import { spawnSync } from 'node:child_process';

const SERVER_BIN = path.join(REPO_ROOT, 'bin', 'outpost-server.js');
const SECRET = 'the-organisations-enrollment-secret-for-tests-0001';

const enrollments = (home: string) => logOf(home).split('\n').filter((line) => line.includes('enrolled at')).length;

test('an agent given the enrollment secret by the installer command enrolls once, then reports and keeps its push channel with its own token; a server that lost its agents gets it back by a new enrollment; revoked, it stops asking; one without a secret says what to do', async (t) => {
  const lab = new ReleaseLab(t);
  const install = lab.app('1.0.0', { 'main.js': 'v1' });
  lab.publish(install, '1.0.0');
  const secrets = path.join(lab.root, 'enrollment-secrets');
  fs.writeFileSync(secrets, `${SECRET}\n`, { mode: 0o600 });
  const agentsFile = path.join(lab.root, 'agents.jsonl');
  const serverArgs = ['--enrollment-secrets', secrets, '--agents', agentsFile];
  await lab.startServer(0, serverArgs);
  t.after(() => lab.stopServer());
  const home = lab.home({ update: { reconnect_window_s: 1 } });
  const paths = storagePaths(home);
  const env = { OUTPOST_INSTALL_DIR: install };

  // What the installers run (/ENROLL=FILE): the secret from a file, never on the command line.
  const given = path.join(lab.root, 'given-secret');
  fs.writeFileSync(given, `${SECRET}\n`);
  const set = await runOutpost(home, ['--set-enrollment-secret', given], env);
  assert.equal(set.code, 0, set.stderr);
  assert.equal(set.stdout, `enrollment secret kept in ${paths.enrollmentSecret}; the agent enrolls with it when it next talks to its backend\n`, 'no credential store answers here: the file');
  assert.equal(fs.statSync(paths.enrollmentSecret).mode & 0o777, 0o600);
  assert.ok(!set.stdout.includes(SECRET) && !set.stderr.includes(SECRET));
  const refused = await runOutpost(home, ['--set-enrollment-secret', path.join(lab.root, 'absent')], env);
  assert.equal(refused.code, 78);
  assert.match(refused.stderr, /Cannot read the enrollment secret from .*absent: ENOENT/);

  // A report waiting from before, as the updater queues them: delivered once the agent has its token.
  const agentId = randomUUID();
  fs.writeFileSync(paths.agentId, `${agentId}\n`);
  const waiting = ErrorReport.parse({ id: randomUUID(), time: new Date().toISOString(), agent_id: agentId, agent_version: '1.0.0', state: 'IDLE', code: 'ERR_UPDATE_SWAP', message: 'queued by the updater', context: {} });
  fs.writeFileSync(paths.errorReports, `${JSON.stringify(waiting)}\n`);

  const agent = await startRunningAgent(home, env);
  t.after(() => agent.kill('SIGKILL'));
  await until('the report delivered', () => lab.reports().find((r) => r.id === waiting.id));
  await until('the push channel open', () => logOf(home).includes('push channel open'));
  assert.equal(enrollments(home), 1, 'reports and push share one enrollment');
  const token = fs.readFileSync(paths.agentToken, 'utf8').trim();
  assert.equal(fs.statSync(paths.agentToken).mode & 0o777, 0o600);
  for (const secret of [SECRET, token]) assert.ok(!logOf(home).includes(secret), 'neither secret nor token in the log');

  // The server loses its agents (a new store): the token is refused at the next push channel, and the agent enrolls again.
  await lab.stopServer();
  fs.rmSync(agentsFile);
  await lab.startServer(lab.port, serverArgs);
  await until('a second enrollment', () => enrollments(home) === 2, 30_000);
  assert.match(logOf(home), /the backend no longer knows this agent's token: enrolling again/);
  await until('the push channel open again', () => logOf(home).split('\n').filter((line) => line.includes('push channel open')).length >= 2, 30_000);
  assert.notEqual(fs.readFileSync(paths.agentToken, 'utf8').trim(), token);

  const revoke = spawnSync(process.execPath, [SERVER_BIN, 'agents', 'revoke', agentId, '--agents', agentsFile], { encoding: 'utf8' });
  assert.equal(revoke.status, 0, revoke.stderr);
  await until('the agent knows', () => logOf(home).includes('ERR_AGENT_REVOKED'), 30_000);
  await until('no more push channel', () => logOf(home).includes('push channel closed for good: this agent was revoked'), 30_000);
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);

  // An agent installed without the secret, at the same server: told once what an administrator must do.
  const bare = lab.home({ update: { reconnect_window_s: 1 } });
  const unenrolled = await startRunningAgent(bare, env);
  t.after(() => unenrolled.kill('SIGKILL'));
  await until('the advice', () => logOf(bare).includes('this agent has no enrollment secret'), 30_000);
  assert.match(logOf(bare), /outpost --set-enrollment-secret FILE/);
  unenrolled.kill('SIGTERM');
  assert.equal((await unenrolled.finish()).code, 0);
  assert.equal(logOf(bare).split('\n').filter((line) => line.includes('has no enrollment secret')).length, 1, 'said once, not per retry');
});
