import { BaseWindow, powerMonitor, type WindowSessionEndEvent } from 'electron';
import type { Logger } from '../../base/logger.js';
import type { AgentState } from '../../common/agent-state.js';
import type { Platform } from '../platform/index.js';
import { sessionEndDecision, sessionEndResponse, type SessionSignal } from './session-end.js';
import type { ShellAgent } from './shell-agent.js';
import { type ShutdownBlocker, win32ShutdownBlocker } from './shutdown-block.js';
import { sessionWindowOptions } from './window-options.js';

/** Something Electron hands a session listener: an event that may be held back, or none. */
type Preventable = { preventDefault(): void } | undefined;

/**
 * Hears the operating system end the session and sends it down the agent's one graceful shutdown.
 * Windows tells top-level windows (WM_QUERYENDSESSION, WM_ENDSESSION), so on Windows this owns a
 * hidden window for the purpose, and sets the reason Windows shows while the agent delays the end;
 * macOS and Linux tell the app through powerMonitor. What to do is decided in session-end.ts.
 */
export class SessionWatch {
  readonly #agent: ShellAgent;
  readonly #log: Logger;
  readonly #window: BaseWindow | null;
  readonly #blocker: ShutdownBlocker | null;
  readonly #unsubscribe: () => void;
  readonly #onShutdown: (event?: Preventable) => void;
  #blocked = false;

  constructor(platform: Platform['name'], agent: ShellAgent, log: Logger) {
    this.#agent = agent;
    this.#log = log;
    this.#onShutdown = (event) => this.#respond('shutdown', event, []);
    if (platform === 'win32') {
      const window = new BaseWindow(sessionWindowOptions());
      window.on('query-session-end', (event: WindowSessionEndEvent) => this.#respond('query-session-end', event, event.reasons));
      window.on('session-end', (event: WindowSessionEndEvent) => this.#respond('session-end', event, event.reasons));
      this.#window = window;
      this.#blocker = win32ShutdownBlocker(window.getNativeWindowHandle(), log);
    } else {
      // Electron passes an event whose preventDefault delays the shutdown, though its types name no argument.
      powerMonitor.on('shutdown', this.#onShutdown);
      this.#window = null;
      this.#blocker = null;
    }
    this.#unsubscribe = agent.state.subscribe((change) => {
      if (change.from !== change.to) this.#holdWhile(change.to);
    });
    this.#holdWhile(agent.state.state);
  }

  #respond(signal: SessionSignal, event: Preventable, reasons: readonly string[]): void {
    const state = this.#agent.state.state;
    const response = sessionEndResponse(signal, state);
    const why = reasons.length > 0 ? ` (${reasons.join(', ')})` : '';
    this.#log.info(`the session is ending: ${signal}${why} in ${state}; ${response.preventDefault ? 'delaying it' : 'not delaying it'}`);
    if (response.preventDefault) event?.preventDefault();
    if (response.stop) void this.#agent.stop(`the operating system is ending the session (${signal}${why})`);
  }

  /** Sets or removes Windows' block reason as the state enters or leaves the one that delays. */
  #holdWhile(state: AgentState): void {
    const { delay, reason } = sessionEndDecision(state);
    if (delay && reason !== null && !this.#blocked) {
      this.#blocker?.block(reason);
      this.#blocked = true;
    } else if (!delay && this.#blocked) {
      this.#blocker?.release();
      this.#blocked = false;
    }
  }

  dispose(): void {
    this.#unsubscribe();
    if (this.#blocked) this.#blocker?.release();
    this.#blocked = false;
    powerMonitor.off('shutdown', this.#onShutdown);
    if (this.#window && !this.#window.isDestroyed()) this.#window.destroy();
  }
}
