/**
 * The feed as plain files: Debian's nginx (standing in for a CDN, or a bucket behind one) with the
 * product's own includes (server/nginx/), over TLS with a CA the test made, which the agent trusts
 * from its config (backend.ca_file) besides the usual roots; push and reports proxied to outpost-server.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { logOf, statusOf } from '../helpers/agent.js';
import { get, nginxOrSkip } from '../helpers/nginx.js';
import { startRunningAgent } from '../helpers/processes.js';
import { ReleaseLab, treeOf } from '../helpers/release-lab.js';
import { seededBytes } from '../helpers/seeded-bytes.js';
import { until } from '../helpers/wait.js';

const V1 = { 'main.js': 'console.log("v1")\n', 'assets/big.bin': seededBytes('static feed', 300 * 1024) };
const V2 = { ...V1, 'main.js': 'console.log("v2")\n' };

const IMMUTABLE = 'public, max-age=31536000, immutable';

test('behind nginx over TLS (the feed as plain files, push and reports proxied to outpost-server): without the organisation CA the agent is refused, saying why; with it (backend.ca_file) its buffered report goes through, the push channel opens, and a pushed release is staged', async (t) => {
  const lab = new ReleaseLab(t);
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  await lab.startServer();
  const nginx = await nginxOrSkip(t, lab.root, [lab.port]);
  if (!nginx) return;
  const home = lab.home({ url: nginx.url });
  const env = { OUTPOST_INSTALL_DIR: install };

  const untrusting = await startRunningAgent(home, env);
  t.after(() => untrusting.kill('SIGKILL'));
  await until('the refusal', () => /update failed; will retry/.test(logOf(home)));
  const refused = await statusOf(home, install);
  assert.equal(refused.update.last_error?.code, 'ERR_UPDATE_DOWNLOAD');
  assert.match(refused.update.last_error?.message ?? '', /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/, 'the certificate is named as the reason');
  untrusting.kill('SIGTERM');
  assert.equal((await untrusting.finish()).code, 0);
  assert.equal(lab.reports().length, 0, 'nothing reached the server: the report waits on disk');

  const configFile = path.join(home, 'config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  fs.writeFileSync(configFile, JSON.stringify({ ...config, backend: { ...config.backend, ca_file: nginx.ca.caFile } }));
  const agent = await startRunningAgent(home, env);
  t.after(() => agent.kill('SIGKILL'));
  const report = await until('the buffered report at the server', () => lab.reports().find((r) => r.code === 'ERR_UPDATE_DOWNLOAD'));
  assert.match(report.message, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/);
  await until('the push channel open over TLS', () => logOf(home).includes(`push channel open (${nginx.url.replace('https', 'wss')}/ws)`));
  await until('the first check', () => logOf(home).includes('no update: 1.0.0 is the version channel stable offers'));
  const v2 = lab.app('1.1.0', V2);
  lab.publish(v2, '1.1.0');
  await until('the staged release', () => logOf(home).includes('1.1.0 staged complete and verified'), 30_000);
  assert.match(logOf(home), /push: agent:update_required/, 'the release came by push, through nginx');
  assert.deepEqual(treeOf(path.join(home, 'updates', '1.1.0')), treeOf(v2));
  assert.match(logOf(home), /update 1\.0\.0 -> 1\.1\.0: 3 files, 1 unchanged, 2 chunks to download in 2 requests/, 'main.js and package.json changed');
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
});

test("the static host's cache rules: the timestamp is revalidated every time, versioned metadata and content-addressed files are immutable for a year; ranges; nothing outside the feed, no dotfile, no listing", async (t) => {
  const lab = new ReleaseLab(t);
  lab.publish(lab.app('1.0.0', V1), '1.0.0');
  const nginx = await nginxOrSkip(t, lab.root);
  if (!nginx) return;
  const at = (relative: string, headers: Record<string, string> = {}) => get(`${nginx.url}/feed/${relative}`, nginx.ca.caFile, headers);
  /** The biggest file under `dir` of the feed. */
  const first = (dir: string) => {
    const files = fs.readdirSync(path.join(lab.feed, dir), { recursive: true, encoding: 'utf8' }).filter((f) => fs.statSync(path.join(lab.feed, dir, f)).isFile());
    const file = files.sort((a, b) => fs.statSync(path.join(lab.feed, dir, b)).size - fs.statSync(path.join(lab.feed, dir, a)).size)[0];
    assert.ok(file, `a file under ${dir}`);
    return `${dir}/${file}`;
  };

  const timestamp = await at('metadata/timestamp.json', { 'Accept-Encoding': 'gzip' });
  assert.equal(timestamp.status, 200);
  assert.equal(timestamp.headers['cache-control'], 'no-cache');
  assert.equal(timestamp.headers['content-encoding'], 'gzip', 'JSON compressed for a client that asks');
  for (const relative of ['metadata/1.root.json', 'metadata/1.snapshot.json', first('targets'), first('manifests'), first('files')]) {
    const answer = await at(relative);
    assert.equal(answer.status, 200, relative);
    assert.equal(answer.headers['cache-control'], IMMUTABLE, relative);
  }
  const object = first('files');
  const ranged = await at(object, { Range: 'bytes=10-109' });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.bytes, 100);
  assert.match(String(ranged.headers['content-range']), new RegExp(`^bytes 10-109/${fs.statSync(path.join(lab.feed, object)).size}$`));

  fs.writeFileSync(path.join(lab.feed, '.publish.lock'), 'a publish under way');
  for (const [where, answer] of [
    ['a dotfile', await at('.publish.lock')],
    ['a folder', await at('metadata/')],
    ['outside the feed: the release keys beside it', await get(`${nginx.url}/keys/targets.key`, nginx.ca.caFile)],
  ] as const) {
    assert.equal(answer.status, 404, where);
  }
});
