import type { DiagnosticsView, UpdatePhase } from '../common/diagnostics.js';
import { UpdateOutcome } from '../common/update-files.js';
import { el, placeholder, show, tone } from './dom.js';
import { card } from './card.js';
import { formatClock, formatDuration } from './format.js';

type Job = NonNullable<DiagnosticsView['update']['last_job']>;

const RESULT_WORDS: Readonly<Record<UpdatePhase['result'], { readonly kind: 'good' | 'warn' | 'bad'; readonly text: string }>> = {
  ok: { kind: 'good', text: 'ok' },
  failed: { kind: 'bad', text: 'failed' },
  running: { kind: 'warn', text: 'running' },
};

/** The last update job from its journal: from and to, its outcome, and each phase with its duration. */
export class LastUpdate {
  readonly element: HTMLElement;
  readonly #summary = el('p', { class: 'job-summary' }, [placeholder()]);
  readonly #rows = el('tbody');
  readonly #table = el('table', { class: 'phases', attrs: { hidden: '' } }, [
    el('caption', { class: 'visually-hidden', text: 'Phases of the last update' }),
    el('thead', {}, [
      el('tr', {}, [...['Phase', 'Result', 'Began', 'Took'].map((name) => el('th', { text: name, attrs: { scope: 'col' } })), el('th', { class: 'detail', text: 'Detail', attrs: { scope: 'col' } })]),
    ]),
    this.#rows,
  ]);

  constructor() {
    this.element = card('last-update', 'Last update', this.#summary, this.#table);
    this.element.classList.add('wide');
  }

  update(view: DiagnosticsView): void {
    const job = view.update.last_job;
    this.#table.hidden = job === null || job.phases.length === 0;
    if (job === null) {
      show(this.#summary, el('span', { class: 'muted', text: 'No update has run on this machine yet.' }));
      return;
    }
    show(this.#summary, el('strong', { text: `${job.from} → ${job.to}` }), ' · ', outcome(job), ' · job ', el('code', { text: job.job_id }));
    const rows = job.phases.map((phase) => phaseRow(phase, view.at));
    if (el('tbody', {}, rows).textContent !== this.#rows.textContent) this.#rows.replaceChildren(...rows);
  }
}

/** The journal's outcomes (UpdateOutcome), in words; an outcome this page does not know shows as it is. */
const OUTCOME_WORDS: Readonly<Record<UpdateOutcome, { readonly kind: 'good' | 'warn' | 'bad'; readonly text: string }>> = {
  committed: { kind: 'good', text: 'committed' },
  rolled_back: { kind: 'bad', text: 'rolled back' },
  aborted: { kind: 'warn', text: 'aborted' },
};

function outcome(job: Job): HTMLElement {
  if (job.outcome === null) return tone('warn', 'no outcome yet (under way, or cut short and waiting for recovery)');
  const known = UpdateOutcome.safeParse(job.outcome);
  const words = known.success ? OUTCOME_WORDS[known.data] : { kind: 'warn' as const, text: job.outcome };
  return tone(words.kind, job.reason ? `${words.text}: ${job.reason}` : words.text);
}

function phaseRow(phase: UpdatePhase, nowIso: string): HTMLTableRowElement {
  const result = RESULT_WORDS[phase.result];
  return el('tr', {}, [
    el('th', { text: phase.step, attrs: { scope: 'row' } }),
    el('td', {}, [tone(result.kind, result.text)]),
    el('td', { class: 'numeric' }, [el('time', { text: formatClock(phase.began_at, nowIso), attrs: { datetime: phase.began_at, title: phase.began_at } })]),
    el('td', { class: 'numeric', text: phase.ms === null ? '—' : formatDuration(phase.ms) }),
    el('td', { class: 'detail', text: phase.detail ?? '' }),
  ]);
}
