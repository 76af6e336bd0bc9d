import type { ActionResult, DiagnosticsApi, DiagnosticsBundle, DiagnosticsView } from '../common/diagnostics.js';
import { el } from './dom.js';
import { formatBytes } from './format.js';

export interface ActionsOptions {
  readonly api: Omit<DiagnosticsApi, 'read'>;
  /** After an action that changes the agent (check now), so the page shows it without waiting for the next poll. */
  readonly refresh: () => void;
  readonly copy: (text: string) => Promise<void>;
  readonly save: (bundle: DiagnosticsBundle) => void;
}

type Tone = 'good' | 'bad' | 'busy';

/**
 * What an admin can do from the page: check for updates now, open the log folder (the desktop app
 * only), and make a diagnostics bundle to copy or save for a support ticket. Every outcome is said
 * in one polite live region. A busy button is aria-disabled, not disabled, so focus stays on it.
 */
export class Actions {
  readonly element: HTMLElement;
  readonly #message = el('p', { class: 'action-message', attrs: { role: 'status' } });
  readonly #openLogs = button('Open log folder');
  readonly #offer = el('div', { class: 'bundle-offer', attrs: { hidden: '' } });
  readonly #options: ActionsOptions;

  constructor(options: ActionsOptions) {
    this.#options = options;
    const checkNow = button('Check for updates now', 'primary');
    const bundle = button('Diagnostics bundle');
    this.#openLogs.hidden = true;
    this.#on(checkNow, 'Checking for updates…', async () => {
      const result = await this.#options.api.checkNow();
      this.#options.refresh();
      return result;
    });
    this.#on(this.#openLogs, 'Opening the log folder…', () => this.#options.api.openLogFolder());
    this.#on(bundle, 'Making the diagnostics bundle…', async () => {
      const made = await this.#options.api.bundle();
      this.#offerBundle(made);
      return { ok: true, message: `Bundle ready (${made.file_name}, ${formatBytes(new Blob([made.text]).size)}): copy it or save it.` };
    });
    this.element = el('div', { class: 'actions' }, [
      el('div', { class: 'buttons', attrs: { role: 'group', 'aria-label': 'Actions' } }, [checkNow, this.#openLogs, bundle]),
      this.#offer,
      this.#message,
    ]);
  }

  showView(view: DiagnosticsView): void {
    this.#openLogs.hidden = view.agent.shell !== 'electron';
  }

  #on(target: HTMLButtonElement, busy: string, run: () => Promise<ActionResult>): void {
    target.addEventListener('click', async () => {
      if (target.getAttribute('aria-disabled') === 'true') return;
      target.setAttribute('aria-disabled', 'true');
      this.#say('busy', busy);
      try {
        const result = await run();
        this.#say(result.ok ? 'good' : 'bad', result.message);
      } catch (error) {
        this.#say('bad', `${target.textContent} failed: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        target.removeAttribute('aria-disabled');
      }
    });
  }

  #offerBundle(made: DiagnosticsBundle): void {
    const copy = button('Copy');
    const save = button('Save');
    this.#on(copy, 'Copying…', async () => {
      await this.#options.copy(made.text);
      return { ok: true, message: 'The bundle is on the clipboard: paste it into the support ticket.' };
    });
    this.#on(save, 'Saving…', async () => {
      this.#options.save(made);
      return { ok: true, message: `Saving ${made.file_name}: it goes where this browser saves downloads.` };
    });
    this.#offer.replaceChildren(el('span', { class: 'offer-name' }, ['Bundle ', el('code', { text: made.file_name })]), copy, save);
    this.#offer.hidden = false;
  }

  #say(tone: Tone, message: string): void {
    this.#message.dataset.tone = tone;
    this.#message.textContent = message;
  }
}

function button(text: string, kind?: 'primary'): HTMLButtonElement {
  return el('button', { text, ...(kind && { class: kind }), attrs: { type: 'button' } });
}
