import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AGENT_STATES, type AgentState, isUpdatingState } from '../../app/common/agent-state.js';
import { CurrentConfig, DEFAULT_CONFIG } from '../../app/main/core/config-schema.js';
import {
  isActionEnabled,
  type MenuItemSpec,
  menuTemplate,
  sinceLabel,
  STATE_LABELS,
  TOOLTIP_MAX,
  type TrayAction,
  type TrayModel,
  trayIconFor,
  trayMenu,
  trayToolTip,
} from '../../app/main/shell/tray-menu.js';

const NOW = new Date('2026-03-02T12:00:00Z');
const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000);
const model = (state: AgentState, extra: Partial<TrayModel> = {}): TrayModel => ({ version: '1.4.2', state, lastCheck: minutesAgo(5), lastError: null, showQuit: true, now: NOW, ...extra });
const PROBLEM = { code: 'ERR_UPDATE_DOWNLOAD', message: 'The feed at http://127.0.0.1:8470 did not answer.' };

/** The menu as one line per item: `label`, `[action] label` (with `(off)` when disabled), `---`. */
function lines(specs: readonly MenuItemSpec[]): string[] {
  return specs.map((spec) => {
    if (spec.kind === 'separator') return '---';
    if (spec.kind === 'label') return spec.label;
    return `[${spec.action}] ${spec.label}${spec.enabled ? '' : ' (off)'}`;
  });
}

test('the menu of an idle agent: version, state, last check, then every action', () => {
  assert.deepEqual(lines(trayMenu(model('IDLE'))), [
    'Outpost 1.4.2',
    'State: Idle',
    'Last check: 5 minutes ago',
    '---',
    '[check_now] Check for updates now',
    '[show_diagnostics] Show diagnostics',
    '---',
    '[restart] Restart',
    '[quit] Quit',
  ]);
});

test('the menu in every state: what is greyed out, and the state in words', () => {
  for (const state of AGENT_STATES) {
    const menu = trayMenu(model(state));
    const enabled = (action: TrayAction) => menu.some((spec) => spec.kind === 'action' && spec.action === action && spec.enabled);
    const stopping = state === 'SHUTTING_DOWN' || state === 'FORCE_RESTARTING';
    assert.ok(lines(menu).includes(`State: ${STATE_LABELS[state]}`), state);
    assert.equal(enabled('check_now'), state === 'IDLE', `check_now in ${state}`);
    assert.equal(enabled('show_diagnostics'), !stopping, `show_diagnostics in ${state}`);
    assert.equal(enabled('restart'), !stopping && !isUpdatingState(state) && state !== 'STARTING', `restart in ${state}`);
    assert.equal(enabled('quit'), !stopping, `quit in ${state}`);
    for (const spec of menu) if (spec.kind === 'action') assert.equal(spec.enabled, isActionEnabled(spec.action, state), `${spec.action} in ${state}`);
  }
  assert.equal(new Set(Object.values(STATE_LABELS)).size, AGENT_STATES.length, 'each state has its own words');
});

test('"Quit" is left out when config tray.show_quit is false (managed machines); the last problem is shown', () => {
  assert.ok(!lines(trayMenu(model('IDLE', { showQuit: false }))).some((line) => line.includes('Quit')));
  const { tray: _omitted, ...withoutTray } = DEFAULT_CONFIG;
  assert.equal(CurrentConfig.parse(withoutTray).tray.show_quit, true, 'shown by default');
  assert.equal(CurrentConfig.parse({ ...DEFAULT_CONFIG, tray: {} }).tray.show_quit, true);
  assert.equal(CurrentConfig.parse({ ...DEFAULT_CONFIG, tray: { show_quit: false } }).tray.show_quit, false);
  const withProblem = lines(trayMenu(model('IDLE', { lastError: PROBLEM, lastCheck: null })));
  assert.deepEqual(withProblem.slice(2, 4), ['Last check: never', `Last problem: ${PROBLEM.message}`]);
});

test('the icon: updating while an update runs, error after a failed one, idle otherwise', () => {
  for (const state of AGENT_STATES) {
    assert.equal(trayIconFor(state, null), isUpdatingState(state) ? 'updating' : 'idle', state);
    assert.equal(trayIconFor(state, PROBLEM), isUpdatingState(state) ? 'updating' : 'error', state);
  }
});

test('the tooltip: "Outpost <version> — <state>", the problem named by the error icon, never over 127 characters', () => {
  assert.equal(trayToolTip(model('UPDATING_DOWNLOADING')), 'Outpost 1.4.2 — Downloading an update');
  assert.equal(trayToolTip(model('IDLE', { lastError: PROBLEM })), 'Outpost 1.4.2 — Idle; the last update attempt failed');
  const long = trayToolTip(model('IDLE', { version: `1.0.0-${'x'.repeat(200)}` }));
  assert.equal(long.length, TOOLTIP_MAX);
  assert.ok(long.endsWith('…'));
});

test('the last check, relative: never, just now, minutes, hours, days', () => {
  assert.equal(sinceLabel(null, NOW), 'never');
  assert.equal(sinceLabel(minutesAgo(0.5), NOW), 'just now');
  assert.equal(sinceLabel(minutesAgo(-3), NOW), 'just now', 'a clock that went back');
  assert.equal(sinceLabel(minutesAgo(1), NOW), '1 minute ago');
  assert.equal(sinceLabel(minutesAgo(59), NOW), '59 minutes ago');
  assert.equal(sinceLabel(minutesAgo(60), NOW), '1 hour ago');
  assert.equal(sinceLabel(minutesAgo(23 * 60 + 59), NOW), '23 hours ago');
  assert.equal(sinceLabel(minutesAgo(3 * 24 * 60), NOW), '3 days ago');
});

test("Electron's template: labels greyed out, actions that run theirs, ampersands shown as such", () => {
  const ran: TrayAction[] = [];
  const template = menuTemplate(trayMenu(model('IDLE', { lastError: { code: 'X', message: 'proxy & feed down' } })), (action) => ran.push(action));
  assert.deepEqual(
    template.map((item) => [item.type ?? 'normal', item.label ?? null, item.enabled ?? true, typeof item.click]),
    [
      ['normal', 'Outpost 1.4.2', false, 'undefined'],
      ['normal', 'State: Idle', false, 'undefined'],
      ['normal', 'Last check: 5 minutes ago', false, 'undefined'],
      ['normal', 'Last problem: proxy && feed down', false, 'undefined'],
      ['separator', null, true, 'undefined'],
      ['normal', 'Check for updates now', true, 'function'],
      ['normal', 'Show diagnostics', true, 'function'],
      ['separator', null, true, 'undefined'],
      ['normal', 'Restart', true, 'function'],
      ['normal', 'Quit', true, 'function'],
    ],
  );
  for (const item of template) item.click?.(undefined as never, undefined, undefined as never);
  assert.deepEqual(ran, ['check_now', 'show_diagnostics', 'restart', 'quit']);
});
