/**
 * Point 1 of the desktop app: both shells build the agent through agentOptions from the same
 * installation record. What differs is only how each program is started again (its launch command)
 * and the shell's own hooks; the installation, the updater, the trust root and the version do not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agentOptions, type Host, selfLaunch, userArguments } from '../../app/main/agent-start.js';
import type { Installation } from '../../app/main/installation.js';
import { DEFAULT_CONFIG } from '../../app/main/core/config-schema.js';
import { createPlatform } from '../../app/main/platform/index.js';

const installation: Installation = {
  dir: '/opt/outpost',
  version: '1.4.0',
  trustedRootFile: '/opt/outpost/trust/root.json',
  updater: { kind: 'executable', executable: '/opt/outpost/updater/outpost-updater', packages: ['ffi-rs'] },
  pageDir: '/opt/outpost/dist/app/renderer',
  defaultConfig: { ...DEFAULT_CONFIG, backend: { url: 'https://updates.example.org', ws_url: 'wss://updates.example.org/ws', ca_file: null } },
};
const env = { OUTPOST_HOME: '/tmp/x' };
const platform = createPlatform(process.platform, env);
const node: Host = { execPath: '/usr/bin/node', argv: ['/usr/bin/node', '/opt/outpost/bin/outpost.js', '--force'], env, script: '/opt/outpost/bin/outpost.js' };
const packaged: Host = { execPath: '/opt/outpost/outpost', argv: ['/opt/outpost/outpost', '--force'], env, script: null };
const unpackaged: Host = { execPath: '/usr/lib/electron/electron', argv: ['/usr/lib/electron/electron', '/opt/outpost', '--force'], env, script: '/opt/outpost' };

test('the Electron entry and the headless entry hand the same options to Agent.start, but for how each starts again', () => {
  const request = { platform, waitForLockMs: 30_000, stderrLogLevel: 'warn' as const };
  const headless = agentOptions(installation, { ...request, host: node, shell: { kind: 'headless' } });
  const showDiagnostics = () => undefined;
  const electron = agentOptions(installation, { ...request, host: packaged, shell: { kind: 'electron', showDiagnostics } });
  const { launch: headlessLaunch, shell: headlessShell, now: _a, ...headlessRest } = headless;
  const { launch: electronLaunch, shell: electronShell, now: _b, ...electronRest } = electron;
  assert.deepEqual(electronRest, headlessRest);
  assert.equal(headless.installDir, '/opt/outpost');
  assert.equal(headless.trustedRootFile, installation.trustedRootFile);
  assert.deepEqual(headless.updater, installation.updater);
  assert.equal(headless.version, '1.4.0');
  assert.equal(headless.defaultConfig, installation.defaultConfig, "the organisation's backend reaches a first start's config");
  assert.deepEqual(headlessLaunch, { command: '/usr/bin/node', args: ['/opt/outpost/bin/outpost.js'] });
  assert.deepEqual(electronLaunch, { command: '/opt/outpost/outpost', args: [] });
  assert.deepEqual(headlessShell, { kind: 'headless' });
  assert.equal(electronShell?.showDiagnostics, showDiagnostics);
});

test('the launch command and the user arguments of each shape of program', () => {
  assert.deepEqual(selfLaunch(unpackaged), { command: '/usr/lib/electron/electron', args: ['/opt/outpost'] });
  assert.deepEqual(userArguments(node), ['--force']);
  assert.deepEqual(userArguments(packaged), ['--force']);
  assert.deepEqual(userArguments(unpackaged), ['--force']);
  assert.deepEqual(userArguments({ ...packaged, argv: ['/opt/outpost/outpost'] }), []);
});
