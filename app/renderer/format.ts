/**
 * Numbers for humans: sizes in KB/MB, speeds in MB/s, durations as "1.2 s" or "3 min 20 s", times as
 * local clock time with how long ago. Ages are measured against the agent's own clock (the view's
 * `at`), so a page on another clock never shows "in 3 s" or a drifting "ago".
 */

const SIZE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB'] as const;

const oneDecimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** 812 B, 12.3 KB, 4.5 MB (powers of 1024, as file managers count). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < SIZE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? whole.format(value) : oneDecimal.format(value)} ${SIZE_UNITS[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

export function formatPercent(percent: number): string {
  return `${whole.format(Math.floor(percent))} %`;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** 340 ms, 1.2 s, 42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h: two units at most, the coarser first. */
export function formatDuration(ms: number): string {
  if (ms < SECOND) return `${whole.format(ms)} ms`;
  if (ms < 10 * SECOND) return `${oneDecimal.format(ms / SECOND)} s`;
  if (ms < MINUTE) return `${whole.format(Math.floor(ms / SECOND))} s`;
  if (ms < HOUR) return twoUnits(ms, MINUTE, 'min', SECOND, 's');
  if (ms < DAY) return twoUnits(ms, HOUR, 'h', MINUTE, 'min');
  return twoUnits(ms, DAY, 'd', HOUR, 'h');
}

function twoUnits(ms: number, big: number, bigName: string, small: number, smallName: string): string {
  const bigCount = Math.floor(ms / big);
  const smallCount = Math.floor((ms % big) / small);
  return smallCount === 0 ? `${bigCount} ${bigName}` : `${bigCount} ${bigName} ${smallCount} ${smallName}`;
}

/** "just now", "12 s ago", "3 min ago": how long before `now` the moment was (both agent-clock ISO strings). */
export function formatAgo(iso: string, nowIso: string): string {
  const age = Date.parse(nowIso) - Date.parse(iso);
  if (Number.isNaN(age)) return '';
  if (age < SECOND) return 'just now';
  if (age < MINUTE) return `${Math.floor(age / SECOND)} s ago`;
  return `${formatDuration(age).split(' ').slice(0, 2).join(' ')} ago`;
}

const clockTime = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
const dateAndTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** Local time of day, with the date when it is not the same day as `nowIso`; the text itself when it is no date. */
export function formatClock(iso: string, nowIso: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const now = new Date(nowIso);
  return at.toDateString() === now.toDateString() ? clockTime.format(at) : dateAndTime.format(at);
}

const logTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });

/** A log line's time, short and fixed-width (the date is in the line's tooltip). */
export function formatLogTime(iso: string): string {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? iso : logTime.format(at);
}
