import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CURRENT_CONFIG_VERSION, DEFAULT_CONFIG } from '../../app/main/core/config-schema.js';
import { REPO_ROOT, tempDir } from '../helpers/paths.js';
import { runOutpost, startRunningAgent } from '../helpers/processes.js';

const VERSION = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version as string;

test('--version prints the package version and exits 0', async (t) => {
  const result = await runOutpost(tempDir(t), ['--version']);
  assert.equal(result.code, 0);
  assert.equal(result.stdout, `${VERSION}\n`);
});

for (const args of [
  ['--bogus'],
  ['frobnicate'],
  ['status', 'extra'],
  ['--force', '--version'],
  ['status', '--force'],
  ['--scope', 'user'],
  ['--enable-autostart', '--scope', 'everyone'],
  ['--quit', '--scope', 'machine'],
]) {
  test(`bad arguments (${args.join(' ')}): usage on stderr, exit 64, nothing started`, async (t) => {
    const home = path.join(tempDir(t), 'home');
    const result = await runOutpost(home, args);
    assert.equal(result.code, 64);
    assert.match(result.stderr, /Usage:\n\s+outpost /);
    assert.equal(result.stdout, '');
    assert.equal(fs.existsSync(home), false, 'no storage folder created');
  });
}

for (const [name, content, problem] of [
  ['unparsable', '{"config_version": 2,', /not valid JSON/],
  ['schema-invalid', JSON.stringify({ ...DEFAULT_CONFIG, log_level: 'loud' }), /log_level: /],
  ['future-version', JSON.stringify({ ...DEFAULT_CONFIG, config_version: 99 }), /config_version 99 was written by a newer Outpost/],
] as const) {
  test(`${name} config.json: exit 78 with one line naming the file, file byte-for-byte untouched`, async (t) => {
    const home = tempDir(t);
    const file = path.join(home, 'config.json');
    fs.writeFileSync(file, content);
    const result = await runOutpost(home);
    assert.equal(result.code, 78);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.ok(lines[0]?.startsWith(`outpost: ${file}: `), lines[0]);
    assert.match(lines[0] ?? '', problem);
    assert.equal(fs.readFileSync(file, 'utf8'), content);
    assert.equal(fs.existsSync(path.join(home, 'agent.lock')), false, 'no lock taken');
  });
}

for (const [name, content, problem] of [
  ['missing', null, /cannot be read: .*not found|cannot be read/],
  ['not a certificate', 'my CA, as I remember it', /holds no PEM certificate/],
  ['damaged', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', /holds a damaged certificate \(number 1\)/],
] as const) {
  test(`backend.ca_file ${name}: exit 78 naming the file and what to do, nothing started`, async (t) => {
    const home = tempDir(t);
    const caFile = path.join(home, 'organisation-ca.pem');
    if (content !== null) fs.writeFileSync(caFile, content);
    fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify({ ...DEFAULT_CONFIG, backend: { ...DEFAULT_CONFIG.backend, ca_file: caFile } }));
    const result = await runOutpost(home);
    assert.equal(result.code, 78, result.stderr);
    assert.ok(result.stderr.includes(`The organisation's CA file ${caFile}`), result.stderr);
    assert.match(result.stderr, problem);
    assert.match(result.stderr, /Fix backend\.ca_file in config\.json \(a PEM file of CA certificates\), or set it to null\./);
  });
}

test('an invalid OUTPOST_LOG_LEVEL is a config error (78)', async (t) => {
  const result = await runOutpost(tempDir(t), [], { OUTPOST_LOG_LEVEL: 'chatty' });
  assert.equal(result.code, 78);
  assert.match(result.stderr, /OUTPOST_LOG_LEVEL must be one of error, warn, info, debug/);
});

test('the log level comes from config, and OUTPOST_LOG_LEVEL overrides it', async (t) => {
  const home = tempDir(t);
  fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify({ ...DEFAULT_CONFIG, log_level: 'warn' }));
  const quiet = await startRunningAgent(home);
  quiet.kill('SIGTERM');
  await quiet.finish();
  const log = path.join(home, 'logs', 'outpost.log');
  const before = fs.readFileSync(log, 'utf8');
  // Lines before the config was read are at the default level; none after it.
  assert.doesNotMatch(before, /\[info\] \[state\]/);
  const chatty = await startRunningAgent(home, { OUTPOST_LOG_LEVEL: 'debug' });
  chatty.kill('SIGTERM');
  await chatty.finish();
  const after = fs.readFileSync(log, 'utf8').slice(before.length);
  assert.match(after, /\[info\] \[state\] state STARTING -> IDLE/);
  assert.match(after, /\[debug\] shutdown: lock stopped/);
});

test('a v1 config is migrated at start, backed up, and current_version recorded and logged', async (t) => {
  const home = tempDir(t);
  const original = JSON.stringify({ config_version: 1, server_url: 'http://127.0.0.1:9999', current_version: '0.0.1' });
  fs.writeFileSync(path.join(home, 'config.json'), original);
  const agent = await startRunningAgent(home);
  agent.kill('SIGTERM');
  await agent.finish();
  const config = JSON.parse(fs.readFileSync(path.join(home, 'config.json'), 'utf8'));
  assert.equal(config.config_version, CURRENT_CONFIG_VERSION);
  assert.equal(config.current_version, VERSION);
  assert.deepEqual(config.backend, { url: 'http://127.0.0.1:9999', ws_url: 'ws://127.0.0.1:9999/ws', ca_file: null });
  const backups = fs.readdirSync(home).filter((n) => n.endsWith('.bak'));
  assert.equal(backups.length, 1);
  assert.equal(fs.readFileSync(path.join(home, backups[0] as string), 'utf8'), original);
  const log = fs.readFileSync(path.join(home, 'logs', 'outpost.log'), 'utf8');
  assert.equal(log.match(/config migrated v1 -> v2/g)?.length, 1);
  assert.match(log, new RegExp(`current_version 0\\.0\\.1 -> ${VERSION.replaceAll('.', '\\.')}`));
});
