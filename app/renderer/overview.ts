import type { DiagnosticsView } from '../common/diagnostics.js';
import type { DownloadCost } from '../common/update-files.js';
import { type Content, el, moment, placeholder, show, tone } from './dom.js';
import { card, FactList } from './card.js';
import { formatBytes, formatDuration, formatPercent, formatRate } from './format.js';

type View = DiagnosticsView;

/**
 * The facts of a view, in four cards: the agent, its single-instance lock, its updates and the
 * download under way. The DOM is made once (the skeleton); each view only changes the values.
 */
export class Overview {
  readonly element: HTMLElement;
  readonly #updates: ((view: View) => void)[] = [];

  constructor() {
    this.element = el('div', { class: 'overview' }, [
      el('div', { class: 'column' }, [this.#agentCard(), this.#lockCard()]),
      el('div', { class: 'column' }, [this.#updateCard(), this.#downloadCard()]),
    ]);
  }

  update(view: View): void {
    for (const update of this.#updates) update(view);
  }

  /** A row whose value `render` makes from each view. */
  #fact(list: FactList, label: string, render: (view: View) => Content[]): void {
    const cell = list.add(label);
    this.#updates.push((view) => show(cell, ...render(view)));
  }

  #agentCard(): HTMLElement {
    const facts = new FactList();
    this.#fact(facts, 'State', ({ at, agent }) => [code(agent.state), ' since ', moment(agent.state_since, at)]);
    this.#fact(facts, 'Version', ({ agent }) => [agent.version]);
    this.#fact(facts, 'Process ID', ({ agent }) => [String(agent.pid)]);
    this.#fact(facts, 'Uptime', ({ agent }) => [formatDuration(agent.uptime_s * 1000)]);
    this.#fact(facts, 'Shell', ({ agent }) => [agent.shell === 'electron' ? 'Desktop app' : 'Headless (outpost command)']);
    this.#fact(facts, 'Storage folder', ({ agent }) => [path(agent.storage)]);
    this.#fact(facts, 'Log folder', ({ agent }) => [path(agent.logs)]);
    this.#fact(facts, 'Error reports queued', ({ reports }) => [reports.queued === 0 ? 'None' : `${reports.queued} waiting to be sent`]);
    return card('agent', 'Agent', facts.element);
  }

  #lockCard(): HTMLElement {
    const facts = new FactList();
    const unreadable = (): Content[] => [muted('unreadable')];
    this.#fact(facts, 'Held by', ({ lock, agent }) => {
      if (lock === null) return [tone('bad', 'The lock file cannot be read')];
      return lock.pid === agent.pid ? [`pid ${lock.pid} (this agent)`] : [tone('bad', `pid ${lock.pid}, not this agent (pid ${agent.pid})`)];
    });
    this.#fact(facts, 'Holder version', ({ lock }) => (lock ? [lock.version] : unreadable()));
    this.#fact(facts, 'Acquired', ({ lock, at }) => (lock ? [moment(lock.acquired_at, at)] : unreadable()));
    this.#fact(facts, 'Last heartbeat', ({ lock, at }) => (lock ? [moment(lock.heartbeat_at, at)] : unreadable()));
    return card('lock', 'Single-instance lock', facts.element);
  }

  #updateCard(): HTMLElement {
    const facts = new FactList();
    this.#fact(facts, 'Updates', ({ update }) => (update.enabled ? [`On, channel `, code(update.channel)] : [tone('warn', 'Off: this agent has no trust root or no installation folder')]));
    this.#fact(facts, 'Last check', ({ update, at }) => (update.last_check ? [moment(update.last_check, at)] : [muted('not yet')]));
    this.#fact(facts, 'Result', ({ update }) => {
      const result = update.last_result;
      if (result === null) return [muted('none yet')];
      return [result.ok ? tone('good', result.message) : tone('bad', `Failed: ${result.message}`)];
    });
    this.#fact(facts, 'Offered', ({ update }) => [update.offered ?? muted('none')]);
    this.#fact(facts, 'Staged', ({ update }) => [update.staged ?? muted('none')]);
    this.#fact(facts, 'Held back', ({ update, at }) => {
      if (update.held_back.length === 0) return [muted('none')];
      const items = update.held_back.map((held) =>
        el('li', {}, [el('strong', { text: held.version }), `: ${held.rollbacks} ${held.rollbacks === 1 ? 'rollback' : 'rollbacks'}, last `, moment(held.last, at)]),
      );
      return [el('ul', { class: 'plain' }, items)];
    });
    this.#fact(facts, 'Last error', ({ update }) => (update.last_error ? [tone('bad', update.last_error.message), ' ', code(update.last_error.code)] : [muted('none')]));
    return card('updates', 'Updates', facts.element);
  }

  #downloadCard(): HTMLElement {
    const bar = el('progress', { attrs: { max: '100', 'aria-labelledby': 'download-title', hidden: '' } });
    const words = el('p', { class: 'download-words' }, [placeholder()]);
    this.#updates.push(({ update }) => {
      const progress = update.progress;
      bar.hidden = progress === null;
      if (progress === null) {
        const last = update.last_download;
        show(words, muted('No download under way.'), ...(last ? [' ', savedWords(last)] : []));
        return;
      }
      bar.value = progress.percent;
      const speed = progress.bytes_per_s === null ? 'measuring speed' : formatRate(progress.bytes_per_s);
      show(words, el('strong', { text: formatPercent(progress.percent) }), ` · ${formatBytes(progress.bytes)} of ${formatBytes(progress.total)} · ${speed}`);
    });
    return card('download', 'Download', bar, words);
  }
}

/** The saving chunked updates make, in words: what came over the wire against the release's size. */
function savedWords(last: DownloadCost): HTMLElement {
  const share = last.release_bytes === 0 ? 0 : (last.downloaded_bytes * 100) / last.release_bytes;
  return el('span', { class: 'download-saving' }, [`Last update, ${last.version}: downloaded `, el('strong', { text: formatBytes(last.downloaded_bytes) }), ` of its ${formatBytes(last.release_bytes)} (${share < 1 ? `${share.toFixed(2)} %` : formatPercent(share)}).`]);
}

function code(text: string): HTMLElement {
  return el('code', { text });
}

function path(text: string): HTMLElement {
  return el('code', { class: 'path', text });
}

function muted(text: string): HTMLElement {
  return el('span', { class: 'muted', text });
}
