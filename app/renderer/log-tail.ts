import type { LogLine } from '../common/diagnostics.js';
import { LOG_LEVELS, type LogLevel } from '../common/log-levels.js';
import { el } from './dom.js';
import { card } from './card.js';
import { formatLogTime } from './format.js';

/** How many lines the page keeps: enough to scroll back through an update, bounded for a page left open for days. */
export const LOG_KEEP_LINES = 500;

const FILTERS: readonly { readonly level: LogLevel; readonly label: string }[] = [
  { level: 'debug', label: 'Everything' },
  { level: 'info', label: 'Info and above' },
  { level: 'warn', label: 'Warnings and errors' },
  { level: 'error', label: 'Errors only' },
];

/** Within this many pixels of the end counts as "at the end" (zoom makes scroll positions fractional). */
const AT_END_SLACK_PX = 4;

interface Kept {
  readonly level: LogLevel | null;
  readonly node: HTMLElement;
}

/**
 * The live tail of the agent's log: new lines are appended and the oldest dropped past
 * LOG_KEEP_LINES. It follows new lines while the reader is at the end, and stays put when they have
 * scrolled up to read. The level filter is a CSS rule on the box, so changing it touches no line.
 */
export class LogTail {
  readonly element: HTMLElement;
  readonly #box = el('div', { class: 'log', attrs: { role: 'log', 'aria-live': 'off', tabindex: '0', 'aria-label': 'Agent log, newest last', 'data-show': 'debug' } });
  readonly #empty = el('p', { class: 'log-empty muted', text: 'No lines yet.' });
  readonly #count = el('p', { class: 'log-count muted' });
  readonly #filter = el(
    'select',
    { attrs: { id: 'log-level' } },
    FILTERS.map(({ level, label }) => el('option', { text: label, attrs: { value: level } })),
  );
  readonly #jump = el('button', { class: 'quiet', text: 'Jump to newest', attrs: { type: 'button', hidden: '' } });
  readonly #kept: Kept[] = [];
  #following = true;

  constructor() {
    const controls = el('div', { class: 'log-controls' }, [el('label', { text: 'Show', attrs: { for: 'log-level' } }), this.#filter, this.#jump, this.#count]);
    this.element = card('log', 'Log', controls, this.#box);
    this.element.classList.add('wide');
    this.#box.append(this.#empty);
    this.#filter.addEventListener('change', () => this.#applyFilter());
    this.#box.addEventListener('scroll', () => this.#setFollowing(this.#atEnd()));
    this.#jump.addEventListener('click', () => {
      this.#scrollToEnd();
      this.#box.focus();
    });
    this.#showCount();
  }

  /** New lines from a read; `skipped`: the agent wrote more since the last read than it returned. */
  append(lines: readonly LogLine[], skipped: boolean): void {
    if (lines.length === 0 && !skipped) return;
    const fresh: Kept[] = [];
    if (skipped) fresh.push({ level: null, node: el('div', { class: 'line gap', text: '… lines skipped: the log grew faster than this page read it (the whole log is in the log folder)' }) });
    for (const line of lines) fresh.push({ level: line.level, node: lineNode(line) });
    this.#kept.push(...fresh);
    this.#box.append(...fresh.map((kept) => kept.node));
    for (const dropped of this.#kept.splice(0, Math.max(0, this.#kept.length - LOG_KEEP_LINES))) dropped.node.remove();
    if (this.#following) this.#scrollToEnd();
    this.#showCount();
  }

  #applyFilter(): void {
    this.#box.dataset.show = this.#filter.value;
    if (this.#following) this.#scrollToEnd();
    this.#showCount();
  }

  #showCount(): void {
    const shownLevels = LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(this.#filter.value as LogLevel) + 1);
    const lines = this.#kept.filter((kept) => kept.level !== null);
    const shown = lines.filter((kept) => kept.level !== null && shownLevels.includes(kept.level)).length;
    this.#empty.hidden = shown > 0;
    this.#empty.textContent = lines.length === 0 ? 'No lines yet.' : 'No lines at this level.';
    this.#count.textContent = shown === lines.length ? `${lines.length} lines` : `${shown} of ${lines.length} lines`;
  }

  #atEnd(): boolean {
    const box = this.#box;
    return box.scrollHeight - box.scrollTop - box.clientHeight <= AT_END_SLACK_PX;
  }

  #scrollToEnd(): void {
    this.#box.scrollTop = this.#box.scrollHeight;
    this.#setFollowing(true);
  }

  #setFollowing(following: boolean): void {
    this.#following = following;
    this.#jump.hidden = following;
  }
}

function lineNode(line: LogLine): HTMLElement {
  return el('div', { class: `line level-${line.level}` }, [
    el('time', { text: formatLogTime(line.at), attrs: { datetime: line.at, title: line.at } }),
    ' ',
    el('span', { class: 'level', text: line.level.toUpperCase() }),
    ' ',
    el('span', { class: 'text', text: line.text }),
  ]);
}
