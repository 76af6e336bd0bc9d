/**
 * Credentials never leak: a backend URL with user:password and a token in its query (config
 * backend.url and backend.ws_url, as an admin might write them) must not appear in anything the agent
 * writes or sends: its log, its stderr, `outpost status` (update.last_error.message), and the error
 * reports the server stores. The feed is empty, so every check fails with messages that name the URL.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { redactSecrets } from '../../app/base/redact.js';
import { runOutpost, startRunningAgent } from '../helpers/processes.js';
import { ReleaseLab } from '../helpers/release-lab.js';
import { logOf } from '../helpers/agent.js';
import { until } from '../helpers/wait.js';

const PASSWORD = 'pw-Hunter2-8f3a';
const TOKEN = 'tok-51c0ffee';
const WS_TOKEN = 'wst-9d00dle';

test('a backend URL with user:password and query tokens: the secrets appear in no log line, stderr, outpost status or stored report', async (t) => {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const url = `http://outpost:${PASSWORD}@127.0.0.1:${lab.port}/?token=${TOKEN}`;
  const home = lab.home({ url, wsUrl: `ws://127.0.0.1:${lab.port}/ws?access_token=${WS_TOKEN}` });
  const install = lab.app('1.0.0', { 'main.js': '' });
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install, OUTPOST_LOG_LEVEL: 'debug' });
  t.after(() => agent.kill('SIGKILL'));

  const report = await until('a report of the failed check at the server', () => lab.reports().find((r) => r.code.startsWith('ERR_UPDATE')));
  assert.match(report.message, /127\.0\.0\.1/, 'the message names the backend (so the URL was in it)');
  const status = await runOutpost(home, ['status'], { OUTPOST_INSTALL_DIR: install });
  assert.equal(status.code, 0, status.stderr);
  const lastError = JSON.parse(status.stdout).update.last_error;
  assert.ok(lastError?.message, 'status names the failure');
  agent.kill('SIGTERM');
  const stopped = await agent.finish();

  const outputs = {
    log: logOf(home),
    'agent stderr': stopped.stderr,
    'outpost status': status.stdout + status.stderr,
    "the server's report store": fs.readFileSync(lab.reportsFile, 'utf8'),
  };
  assert.match(outputs.log, /outpost:\*\*\*@127\.0\.0\.1|\*\*\*@127\.0\.0\.1/, 'the log names the URL, redacted');
  for (const [where, text] of Object.entries(outputs)) {
    for (const secret of [PASSWORD, TOKEN, WS_TOKEN]) assert.ok(!text.includes(secret), `${where} holds ${secret}`);
  }
});

test('redactSecrets: user:password and secret-named query values go, the rest of the text stays', () => {
  assert.equal(redactSecrets('GET https://me:pa55@feed.example/a?x=1&token=abc#f: HTTP 404'), 'GET https://***@feed.example/a?x=1&token=***#f: HTTP 404');
  assert.equal(redactSecrets('ws://h/ws?access_token=abc&api_key=k&version=2'), 'ws://h/ws?access_token=***&api_key=***&version=2');
  assert.equal(redactSecrets('user@example.com wrote to http://host/path'), 'user@example.com wrote to http://host/path');
});
