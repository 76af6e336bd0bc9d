/**
 * Start at login for real on Linux: `outpost --enable-autostart` writes the XDG autostart entry
 * (this user's under $XDG_CONFIG_HOME, or, run as root, every user's under the first of
 * $XDG_CONFIG_DIRS: both pointed at temporary folders here), twice is once, `outpost status` says where
 * it is, and `--disable-autostart` removes it, twice is once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { statusOf } from '../helpers/agent.js';
import { OUTPOST_BIN, tempDir } from '../helpers/paths.js';
import { runOutpost, startRunningAgent } from '../helpers/processes.js';

test('--enable-autostart writes the XDG entry once, status shows it, --disable-autostart removes it once', async (t) => {
  const home = tempDir(t);
  const config = tempDir(t);
  const env = { XDG_CONFIG_HOME: path.join(config, 'user'), XDG_CONFIG_DIRS: `${path.join(config, 'system')}:/etc/xdg` };
  const elevated = process.getuid?.() === 0;
  const entry = path.join(config, elevated ? 'system' : 'user', 'autostart', 'outpost.desktop');
  const who = elevated ? 'every user of this machine' : 'this user';

  const enabled = await runOutpost(home, ['--enable-autostart'], env);
  assert.equal(enabled.code, 0, enabled.stderr);
  assert.equal(enabled.stdout, `autostart enabled for ${who}: ${entry} starts ${process.execPath} ${OUTPOST_BIN} at login\n`);
  const text = fs.readFileSync(entry, 'utf8');
  assert.match(text, /^\[Desktop Entry\]\nType=Application\nName=Outpost\n/);
  assert.ok(text.includes(`\nExec=${process.execPath} ${OUTPOST_BIN}\n`), text);
  assert.equal((fs.statSync(entry).mode & 0o777).toString(8), '644', 'the session manager reads it');
  assert.equal(fs.existsSync(path.join(config, elevated ? 'user' : 'system')), false, 'the other scope is left alone');
  const written = fs.statSync(entry).mtimeMs;

  const again = await runOutpost(home, ['--enable-autostart'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, `autostart was already enabled for ${who} (${entry}); nothing changed\n`);
  assert.equal(fs.statSync(entry).mtimeMs, written, 'not written again');

  const agent = await startRunningAgent(home, env);
  t.after(() => agent.kill('SIGKILL'));
  assert.deepEqual((await statusOf(home, undefined, env)).autostart, { enabled: true, location: entry, scope: elevated ? 'machine' : 'user' });

  // Another program's entry in its place (an older install): replaced, and said so.
  fs.writeFileSync(entry, '[Desktop Entry]\nExec=/opt/old/outpost\n');
  const updated = await runOutpost(home, ['--enable-autostart'], env);
  assert.match(updated.stdout, /^autostart updated for .* now starts /);
  assert.equal(fs.readFileSync(entry, 'utf8'), text);

  const disabled = await runOutpost(home, ['--disable-autostart'], env);
  assert.equal(disabled.code, 0, disabled.stderr);
  assert.equal(disabled.stdout, `autostart disabled for ${who}: removed ${entry}\n`);
  assert.equal(fs.existsSync(entry), false);
  const twice = await runOutpost(home, ['--disable-autostart'], env);
  assert.equal(twice.code, 0, twice.stderr);
  assert.equal(twice.stdout, `autostart was not enabled for ${who} (there is no ${entry}); nothing changed\n`);
  assert.equal((await statusOf(home, undefined, env)).autostart.enabled, false);
});

test('an autostart folder that cannot be written: exit 74 naming the file, and status still answers', async (t) => {
  const home = tempDir(t);
  const config = tempDir(t);
  // A file where the autostart folder should be: no permission trick that root would pass through.
  fs.writeFileSync(path.join(config, 'autostart'), '');
  const env = { XDG_CONFIG_HOME: config, XDG_CONFIG_DIRS: config };
  const result = await runOutpost(home, ['--enable-autostart'], env);
  assert.equal(result.code, 74, result.stderr);
  assert.match(result.stderr, /^outpost: Cannot read the autostart entry .*autostart\/outpost\.desktop: a part of the path is a file, not a folder \(ENOTDIR\)\.\n$/);
  const agent = await startRunningAgent(home, env);
  t.after(() => agent.kill('SIGKILL'));
  const status = await runOutpost(home, ['status'], env);
  assert.equal(status.code, 0, 'status answers for the agent all the same');
  assert.equal(JSON.parse(status.stdout).autostart.enabled, null, 'unknown, not false');
  assert.match(status.stderr, /Cannot read the autostart entry/);
});

test('--scope says whose entry, whatever the elevation: an installer registers its own install scope', async (t) => {
  const home = tempDir(t);
  const config = tempDir(t);
  const env = { XDG_CONFIG_HOME: path.join(config, 'user'), XDG_CONFIG_DIRS: path.join(config, 'system') };
  for (const [scope, who] of [
    ['user', 'this user'],
    ['machine', 'every user of this machine'],
  ] as const) {
    const entry = path.join(config, scope === 'user' ? 'user' : 'system', 'autostart', 'outpost.desktop');
    const enabled = await runOutpost(home, ['--enable-autostart', '--scope', scope], env);
    assert.equal(enabled.code, 0, enabled.stderr);
    assert.equal(enabled.stdout, `autostart enabled for ${who}: ${entry} starts ${process.execPath} ${OUTPOST_BIN} at login\n`);
    assert.ok(fs.existsSync(entry));
    const disabled = await runOutpost(home, ['--disable-autostart', '--scope', scope], env);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.equal(disabled.stdout, `autostart disabled for ${who}: removed ${entry}\n`);
    assert.equal(fs.existsSync(entry), false);
  }
});
