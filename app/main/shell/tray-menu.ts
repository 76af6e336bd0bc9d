import type { MenuItemConstructorOptions } from 'electron';
import { type AgentState, isUpdatingState } from '../../common/agent-state.js';

/**
 * The tray, as data: its icon, tooltip and menu follow from the agent's state alone (tray.ts turns
 * them into Electron objects and rebuilds them when the state changes).
 */

/** The icon's three faces (each a file made by tools/build/icons.ts; tray-icons.ts names them). */
export type TrayIconState = 'idle' | 'updating' | 'error';

export interface Problem {
  readonly code: string;
  readonly message: string;
}

export interface TrayModel {
  readonly version: string;
  readonly state: AgentState;
  /** When the agent last asked the feed (null: not yet). */
  readonly lastCheck: Date | null;
  /** The update's last error, until a check or update succeeds. */
  readonly lastError: Problem | null;
  /** Config tray.show_quit: managed machines take "Quit" away. */
  readonly showQuit: boolean;
  readonly now: Date;
}

export type TrayAction = 'check_now' | 'show_diagnostics' | 'restart' | 'quit';

export type MenuItemSpec =
  | { readonly kind: 'label'; readonly label: string }
  | { readonly kind: 'separator' }
  | { readonly kind: 'action'; readonly action: TrayAction; readonly label: string; readonly enabled: boolean };

/** The state in words, for the menu and the tooltip. */
export const STATE_LABELS: Readonly<Record<AgentState, string>> = {
  STARTING: 'Starting',
  IDLE: 'Idle',
  CHECKING_UPDATE: 'Checking for updates',
  UPDATING_DOWNLOADING: 'Downloading an update',
  UPDATING_VERIFYING: 'Verifying an update',
  UPDATING_STAGING: 'Preparing an update',
  UPDATING_HANDOFF: 'Installing an update',
  FORCE_RESTARTING: 'Restarting',
  SHUTTING_DOWN: 'Shutting down',
};

/** An update under way outshines an old error; an error outshines a quiet agent. */
export function trayIconFor(state: AgentState, lastError: Problem | null): TrayIconState {
  if (isUpdatingState(state)) return 'updating';
  return lastError ? 'error' : 'idle';
}

/** Windows cuts a notification-area tooltip at 127 characters (NOTIFYICONDATA.szTip). */
export const TOOLTIP_MAX = 127;

export function trayToolTip(model: TrayModel): string {
  const problem = trayIconFor(model.state, model.lastError) === 'error' ? '; the last update attempt failed' : '';
  return clip(`Outpost ${model.version} — ${STATE_LABELS[model.state]}${problem}`, TOOLTIP_MAX);
}

/**
 * Whether an action makes sense now. The menu greys out the others, and tray.ts asks again when
 * one is clicked, since a menu can be open across a change of state. A check cannot start while one
 * runs or an update is under way; a restart must not cut an update in half (as `--force` is
 * refused then); nothing starts once the agent is stopping.
 */
export function isActionEnabled(action: TrayAction, state: AgentState): boolean {
  const stopping = state === 'SHUTTING_DOWN' || state === 'FORCE_RESTARTING';
  switch (action) {
    case 'check_now':
      return state === 'IDLE';
    case 'show_diagnostics':
    case 'quit':
      return !stopping;
    case 'restart':
      return !stopping && !isUpdatingState(state) && state !== 'STARTING';
  }
}

export function trayMenu(model: TrayModel): MenuItemSpec[] {
  const action = (kind: TrayAction, label: string): MenuItemSpec => ({ kind: 'action', action: kind, label, enabled: isActionEnabled(kind, model.state) });
  return [
    { kind: 'label', label: `Outpost ${model.version}` },
    { kind: 'label', label: `State: ${STATE_LABELS[model.state]}` },
    { kind: 'label', label: `Last check: ${sinceLabel(model.lastCheck, model.now)}` },
    ...(model.lastError ? [{ kind: 'label', label: `Last problem: ${clip(model.lastError.message, 80)}` } as const] : []),
    { kind: 'separator' },
    action('check_now', 'Check for updates now'),
    action('show_diagnostics', 'Show diagnostics'),
    { kind: 'separator' },
    action('restart', 'Restart'),
    ...(model.showQuit ? [action('quit', 'Quit')] : []),
  ];
}

/**
 * The specs as Electron's menu template. Labels are escaped: Electron reads `&` as the mark of an
 * access key on every platform and drops it, and an error message may hold one (`&&` shows `&`).
 */
export function menuTemplate(specs: readonly MenuItemSpec[], run: (action: TrayAction) => void): MenuItemConstructorOptions[] {
  return specs.map((spec): MenuItemConstructorOptions => {
    if (spec.kind === 'separator') return { type: 'separator' };
    if (spec.kind === 'label') return { label: escapeAmpersands(spec.label), enabled: false };
    return { label: escapeAmpersands(spec.label), enabled: spec.enabled, click: () => run(spec.action) };
  });
}

/** "never", "just now", "5 minutes ago", "2 hours ago", "3 days ago". */
export function sinceLabel(then: Date | null, now: Date): string {
  if (then === null) return 'never';
  const minutes = Math.floor((now.getTime() - then.getTime()) / 60_000);
  // A check "in the future" is a clock that moved back: it was just now, as far as anyone can tell.
  if (minutes < 1) return 'just now';
  if (minutes < 60) return plural(minutes, 'minute');
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return plural(hours, 'hour');
  return plural(Math.floor(hours / 24), 'day');
}

function plural(count: number, unit: string): string {
  return `${count} ${unit}${count === 1 ? '' : 's'} ago`;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function escapeAmpersands(label: string): string {
  return label.replaceAll('&', '&&');
}
