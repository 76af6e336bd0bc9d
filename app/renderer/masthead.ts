import type { AgentState } from '../common/agent-state.js';
import type { DiagnosticsView } from '../common/diagnostics.js';
import { type Connection, describeConnection } from './connection.js';
import { el, show } from './dom.js';
import { formatClock, formatDuration } from './format.js';

const STATE_WORDS: Readonly<Record<AgentState, { readonly label: string; readonly tone: 'good' | 'busy' | 'warn' }>> = {
  STARTING: { label: 'Starting', tone: 'busy' },
  IDLE: { label: 'Idle', tone: 'good' },
  CHECKING_UPDATE: { label: 'Checking for updates', tone: 'busy' },
  UPDATING_DOWNLOADING: { label: 'Downloading an update', tone: 'busy' },
  UPDATING_VERIFYING: { label: 'Verifying an update', tone: 'busy' },
  UPDATING_STAGING: { label: 'Staging an update', tone: 'busy' },
  UPDATING_HANDOFF: { label: 'Handing over to the new version', tone: 'busy' },
  FORCE_RESTARTING: { label: 'Restarting', tone: 'warn' },
  SHUTTING_DOWN: { label: 'Shutting down', tone: 'warn' },
};

/**
 * The page's banner landmark: what this is, the agent's state as a badge, whether the page is live,
 * and, when it is not, a sentence saying why and what the page does about it.
 */
export class Masthead {
  readonly element: HTMLElement;
  readonly #badge = el('span', { class: 'badge', attrs: { 'data-tone': 'busy' }, text: 'Waiting for the agent' });
  readonly #identity = el('p', { class: 'identity' }, ['Reading the agent…']);
  readonly #pill = el('span', { class: 'pill', attrs: { 'data-tone': 'busy' } });
  readonly #asOf = el('span', { class: 'as-of muted' });
  /** Never hidden, only emptied: a live region must be on the page before its words change to be read out. */
  readonly #banner = el('p', { class: 'banner', attrs: { role: 'status' } });
  #state: AgentState | null = null;
  #connection: Connection['kind'] = 'connecting';

  constructor(actions: HTMLElement) {
    this.element = el('header', { class: 'masthead' }, [
      el('div', { class: 'masthead-top' }, [
        el('div', { class: 'title' }, [el('h1', { text: 'Outpost diagnostics' }), this.#identity]),
        el('div', { class: 'status' }, [
          el('span', { class: 'visually-hidden', text: 'Agent state: ' }),
          this.#badge,
          el('span', { class: 'link' }, [this.#pill, this.#asOf]),
        ]),
      ]),
      actions,
      this.#banner,
    ]);
  }

  showView(view: DiagnosticsView): void {
    this.#state = view.agent.state;
    this.#showBadge();
    show(this.#identity, `Version ${view.agent.version} · pid ${view.agent.pid} · up ${formatDuration(view.agent.uptime_s * 1000)}`);
    show(this.#asOf, `as of ${formatClock(view.at, view.at)}`);
  }

  showConnection(connection: Connection): void {
    const words = describeConnection(connection);
    this.#connection = connection.kind;
    this.#showBadge();
    this.#pill.dataset.tone = words.tone;
    show(this.#pill, words.label);
    this.#banner.dataset.tone = words.tone;
    show(this.#banner, words.sentence ?? '');
  }

  /** The state as last read; said to be old news when the page is not live, and not claimed for an agent that is gone. */
  #showBadge(): void {
    if (this.#state === null) return;
    const state = STATE_WORDS[this.#state];
    const badge = this.#badge;
    badge.title = this.#state;
    const gone = this.#connection === 'no-agent';
    const live = this.#connection === 'live' || this.#connection === 'connecting';
    badge.dataset.tone = gone ? 'bad' : state.tone;
    badge.classList.toggle('stale', !live && !gone);
    show(badge, gone ? 'Not running' : live ? state.label : `Last seen: ${state.label}`);
  }
}
