import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig, readConfig } from '../../app/main/core/config.js';
import { CURRENT_CONFIG_VERSION, DEFAULT_CONFIG } from '../../app/main/core/config-schema.js';
import { isOutpostError } from '../../app/base/errors.js';
import { findJsonSyntaxError } from '../../app/main/core/json-syntax.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { tempDir } from '../helpers/paths.js';

const NOW = new Date('2026-11-25T12:00:00.000Z');

function setup(t: Parameters<typeof tempDir>[0], content?: string) {
  const dir = tempDir(t);
  const file = path.join(dir, 'config.json');
  if (content !== undefined) fs.writeFileSync(file, content);
  return { dir, file, log: memoryLogger() };
}

function expectRefused(t: Parameters<typeof tempDir>[0], content: string, code: string, message: RegExp) {
  const { dir, file, log } = setup(t, content);
  assert.throws(
    () => loadConfig(file, log, () => NOW),
    (error) => isOutpostError(error) && error.code === code && error.exitCode === 78 && message.test(error.message) && error.message.includes(file),
  );
  assert.equal(fs.readFileSync(file, 'utf8'), content, 'the file is byte-for-byte untouched');
  assert.deepEqual(fs.readdirSync(dir), ['config.json'], 'no backup, no temp file');
}

test('a missing config.json is written with the defaults', (t) => {
  const { file, log } = setup(t);
  const loaded = loadConfig(file, log, () => NOW);
  assert.equal(loaded.created, true);
  assert.deepEqual(loaded.config, DEFAULT_CONFIG);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), DEFAULT_CONFIG);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
});

test('a v1 file is migrated to v2 with a byte-for-byte backup, and the migration is logged once', (t) => {
  const original = '{ "config_version": 1, "server_url": "https://updates.example.com:8443", "log_level": "debug" }\n';
  const { dir, file, log } = setup(t, original);
  const loaded = loadConfig(file, log, () => NOW);
  assert.equal(loaded.migrated?.from, 1);
  assert.deepEqual(loaded.config.backend, { url: 'https://updates.example.com:8443', ws_url: 'wss://updates.example.com:8443/ws', ca_file: null });
  assert.equal(loaded.config.log_level, 'debug');
  assert.equal(loaded.config.config_version, CURRENT_CONFIG_VERSION);
  const onDisk = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(onDisk.config_version, CURRENT_CONFIG_VERSION);
  assert.equal(onDisk.server_url, undefined);
  const backup = loaded.migrated?.backup ?? '';
  assert.equal(path.dirname(backup), dir);
  assert.equal(fs.readFileSync(backup, 'utf8'), original);
  assert.equal(log.lines.filter((l) => /config migrated v1 -> v2/.test(l)).length, 1);
  // Loading again finds a current file: nothing more to migrate, nothing rewritten.
  const again = loadConfig(file, memoryLogger(), () => NOW);
  assert.equal(again.migrated, null);
});

test('a file without config_version is taken as v1 and migrated', (t) => {
  const { file, log } = setup(t, '{"server_url":"http://10.0.0.5:8470"}');
  const loaded = loadConfig(file, log, () => NOW);
  assert.equal(loaded.config.backend.ws_url, 'ws://10.0.0.5:8470/ws');
});

test('corrupt JSON: exit 78, one line naming the file, file untouched', (t) => {
  expectRefused(t, '{"config_version": 2, "backend": {', 'ERR_CONFIG_PARSE', /not valid JSON/);
});

test('corrupt JSON is located by line and column, quoting none of it (V8 quotes the text it could not parse)', (t) => {
  expectRefused(t, '{\n  "config_version": 3,\n  "token": hunter2\n}', 'ERR_CONFIG_PARSE', /: not valid JSON: unexpected character at line 3, column 12\. Fix it/);
  expectRefused(t, '{"token": "hunter2', 'ERR_CONFIG_PARSE', /: not valid JSON: it ends too early, at line 1, column 19\./);
  const { file } = setup(t, '{"token": hunter2}');
  assert.throws(() => readConfig(file), (error) => isOutpostError(error) && !error.message.includes('hunter2') && !error.message.includes('"token"'));
});

test('findJsonSyntaxError agrees with JSON.parse on what is JSON, and points at the first bad character', () => {
  const samples = ['{}', '[]', ' 0 ', '"x"', '{"a":[1,-2.5e+3,true,false,null,"\\u00e9\\n\\/"]}', '', ' ', '{', '{"a":1,}', '[1 2]', '01', '1.', '-', '1e', 'tru', 'nul', '"\\x"', '"\\u12"', '"a\nb"', '{"a" 1}', '{a:1}', '[1]]', "{'a':1}", '\u00a0{}', '{"a":1}\n\n  x'];
  for (const text of samples) {
    let valid = true;
    try {
      JSON.parse(text);
    } catch {
      valid = false;
    }
    assert.equal(findJsonSyntaxError(text) === null, valid, JSON.stringify(text));
  }
  assert.deepEqual(findJsonSyntaxError('{\n  "a": 1,\n  oops: 2\n}'), { line: 3, column: 3, atEnd: false });
  assert.deepEqual(findJsonSyntaxError('{"a": [1, 2'), { line: 1, column: 12, atEnd: true });
  assert.deepEqual(findJsonSyntaxError(`${'['.repeat(600)}${']'.repeat(600)}`), { line: 1, column: 513, atEnd: false }, 'deeper than any config: reported, not a stack overflow');
});

test('schema-invalid file: exit 78 naming the key, file untouched', (t) => {
  expectRefused(
    t,
    JSON.stringify({ ...DEFAULT_CONFIG, backend: { url: 'ftp://x', ws_url: 'ws://x/ws' } }),
    'ERR_CONFIG_INVALID',
    /backend\.url: must be an http/,
  );
});

test('a misspelt key is refused rather than ignored', (t) => {
  expectRefused(t, JSON.stringify({ ...DEFAULT_CONFIG, log_levle: 'debug' }), 'ERR_CONFIG_INVALID', /log_levle/);
});

test('lock timings that would rob a busy holder are refused', (t) => {
  expectRefused(t, JSON.stringify({ ...DEFAULT_CONFIG, lock: { heartbeat_ms: 1000, stale_ms: 1500 } }), 'ERR_CONFIG_INVALID', /lock\.stale_ms/);
});

test('a newer config_version than this program knows: exit 78, file untouched', (t) => {
  expectRefused(t, JSON.stringify({ ...DEFAULT_CONFIG, config_version: CURRENT_CONFIG_VERSION + 1 }), 'ERR_CONFIG_TOO_NEW', new RegExp(`config_version ${CURRENT_CONFIG_VERSION + 1} was written by a newer Outpost`));
});

test('an invalid v1 file is refused before anything is written (no backup, no migration)', (t) => {
  expectRefused(t, '{"config_version":1,"server_url":"not a url"}', 'ERR_CONFIG_INVALID', /server_url/);
});

test('a JSON value that is not an object is refused', (t) => {
  expectRefused(t, '[1,2,3]', 'ERR_CONFIG_INVALID', /JSON object/);
});

test('temp files of an interrupted write are removed at load', (t) => {
  const { dir, file, log } = setup(t, JSON.stringify(DEFAULT_CONFIG));
  fs.writeFileSync(`${file}.tmp-999-abcd`, '{"half');
  loadConfig(file, log, () => NOW);
  assert.deepEqual(fs.readdirSync(dir), ['config.json']);
  assert.match(log.lines.join('\n'), /removed config\.json\.tmp-999-abcd/);
});

test('readConfig (used before the lock is held) never writes: not for a missing file, not for an old one', (t) => {
  const { dir, file } = setup(t);
  assert.deepEqual(readConfig(file), { config: DEFAULT_CONFIG, found: 'missing' });
  assert.deepEqual(fs.readdirSync(dir), []);
  const v1 = '{"config_version":1,"server_url":"http://a.example"}';
  fs.writeFileSync(file, v1);
  assert.equal(readConfig(file).config.backend.ws_url, 'ws://a.example/ws');
  assert.deepEqual(fs.readdirSync(dir), ['config.json']);
  assert.equal(fs.readFileSync(file, 'utf8'), v1);
});
