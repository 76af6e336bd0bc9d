import { formatAgo, formatClock } from './format.js';

/**
 * The page's one way of making DOM: elements with text nodes, never HTML strings (log lines and
 * messages are untrusted text, and the CSP forbids inline style anyway).
 */

export type Content = Node | string;

interface Props {
  readonly class?: string;
  readonly text?: string;
  readonly attrs?: Readonly<Record<string, string>>;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, children: readonly Content[] = []): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.class) element.className = props.class;
  if (props.text !== undefined) element.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs ?? {})) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

/**
 * Replaces what `target` shows, only when the text differs: the page re-renders every second, and
 * an admin selecting a path to copy must not lose the selection to an identical repaint.
 */
export function show(target: Element, ...content: Content[]): void {
  const next = el('span', {}, content);
  if (next.textContent === target.textContent && target.childElementCount === next.childElementCount) return;
  target.replaceChildren(...next.childNodes);
}

/** A moment as `<time>`: local clock time and how long ago, the exact instant in its tooltip. */
export function moment(iso: string, nowIso: string): HTMLTimeElement {
  const clock = formatClock(iso, nowIso);
  const ago = formatAgo(iso, nowIso);
  return el('time', { text: ago ? `${clock} (${ago})` : clock, attrs: { datetime: iso, title: iso } });
}

/** The grey bar a value shows until the first read fills it in. */
export function placeholder(): HTMLSpanElement {
  return el('span', { class: 'placeholder', attrs: { 'aria-hidden': 'true' } });
}

/** Words with a meaning beyond their colour (the words themselves say it; the colour helps the eye). */
export function tone(kind: 'good' | 'warn' | 'bad', text: string): HTMLElement {
  return el('span', { class: `tone-${kind}`, text });
}
