import type { DiagnosticsView } from '../common/diagnostics.js';
import { Actions, type ActionsOptions } from './actions.js';
import type { LinkState } from './carrier.js';
import { connectionOf, type ReadOutcome } from './connection.js';
import { el } from './dom.js';
import { LastUpdate } from './last-update.js';
import { LogTail } from './log-tail.js';
import { Masthead } from './masthead.js';
import { Overview } from './overview.js';

/** The mark the benchmark measures to: the first view with live data is on screen. */
export const FIRST_DATA_MARK = 'outpost:first-data';

/**
 * The whole page: its skeleton is built at once, and each view, link change or failed read updates
 * it. `body[data-state]` mirrors the agent's state and `body[data-ready]` appears with the first
 * view (what tests and the benchmark wait on).
 */
export class DiagnosticsPage {
  readonly #body: HTMLElement;
  readonly #masthead: Masthead;
  readonly #actions: Actions;
  readonly #overview = new Overview();
  readonly #lastUpdate = new LastUpdate();
  readonly #log = new LogTail();
  readonly #main: HTMLElement;
  #link: LinkState = { kind: 'connecting' };
  #read: ReadOutcome = null;
  #seen = false;

  constructor(body: HTMLElement, actions: ActionsOptions) {
    this.#body = body;
    this.#actions = new Actions(actions);
    this.#masthead = new Masthead(this.#actions.element);
    this.#main = el('main', { attrs: { 'aria-busy': 'true' } }, [this.#overview.element, this.#log.element, this.#lastUpdate.element]);
    body.replaceChildren(this.#masthead.element, this.#main);
    this.#showConnection();
  }

  showView(view: DiagnosticsView): void {
    const first = !this.#seen;
    this.#seen = true;
    this.#masthead.showView(view);
    this.#actions.showView(view);
    this.#overview.update(view);
    this.#lastUpdate.update(view);
    this.#log.append(view.log.lines, view.log.truncated && !first);
    this.#body.dataset.state = view.agent.state;
    this.#read = { ok: true };
    this.#showConnection();
    if (first) {
      this.#main.removeAttribute('aria-busy');
      this.#body.dataset.ready = 'true';
      performance.mark(FIRST_DATA_MARK);
    }
  }

  showReadFailure(error: unknown): void {
    this.#read = { ok: false, error };
    this.#showConnection();
  }

  showLink(link: LinkState): void {
    // Reads failed while the link was down for that reason only: once it is back, wait for the next one.
    if (link.kind === 'open' && this.#link.kind === 'down') this.#read = null;
    this.#link = link;
    this.#showConnection();
  }

  #showConnection(): void {
    const connection = connectionOf(this.#link, this.#read, this.#seen);
    this.#masthead.showConnection(connection);
    this.#body.dataset.connection = connection.kind;
  }
}
