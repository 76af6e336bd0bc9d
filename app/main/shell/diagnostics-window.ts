import { BrowserWindow, type IpcMainInvokeEvent, ipcMain, nativeTheme } from 'electron';
import { ErrorCode } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import { type ApiResult, DIAGNOSTICS_CHANNEL, type DiagnosticsApi } from '../../common/diagnostics.js';
import { dispatchApiCall } from '../core/diagnostics/api-dispatch.js';
import { callText, DIAGNOSTICS_PAGE_URL, isTrustedSender } from './diagnostics-page.js';
import { diagnosticsWindowOptions } from './window-options.js';

export interface DiagnosticsWindowOptions {
  readonly preload: string;
  readonly icon: string | null;
  readonly development: boolean;
  /** The agent's diagnostics API, which every call from the page is run on. */
  readonly api: () => DiagnosticsApi;
  readonly log: Logger;
}

/**
 * The diagnostics window: made when asked for, one at a time (asking again brings it forward), and
 * destroyed with its renderer process when closed, so a closed window costs nothing. It owns the
 * IPC channel the page calls the API on, and answers only the page it shows.
 */
export class DiagnosticsWindow {
  readonly #options: DiagnosticsWindowOptions;
  #window: BrowserWindow | null = null;

  constructor(options: DiagnosticsWindowOptions) {
    this.#options = options;
    ipcMain.handle(DIAGNOSTICS_CHANNEL, (event, message: unknown) => this.#answer(event, message));
  }

  show(): void {
    const open = this.#window;
    if (open && !open.isDestroyed()) {
      if (open.isMinimized()) open.restore();
      open.show();
      open.focus();
      return;
    }
    const { preload, icon, development, log } = this.#options;
    const window = new BrowserWindow(diagnosticsWindowOptions({ preload, icon, development, dark: nativeTheme.shouldUseDarkColors }));
    window.removeMenu();
    window.once('ready-to-show', () => {
      window.show();
      window.focus();
    });
    window.on('closed', () => {
      if (this.#window === window) this.#window = null;
    });
    this.#window = window;
    window.loadURL(DIAGNOSTICS_PAGE_URL).catch((error: unknown) => {
      log.error(`the diagnostics page did not load: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  async #answer(event: IpcMainInvokeEvent, message: unknown): Promise<ApiResult> {
    const frame = event.senderFrame;
    const sender = { frameUrl: frame?.url ?? null, topFrame: frame?.parent === null, contentsId: event.sender.id };
    const open = this.#window && !this.#window.isDestroyed() ? this.#window.webContents.id : null;
    if (!isTrustedSender(sender, open)) {
      this.#options.log.warn('a diagnostics call from outside the diagnostics window was refused', { url: sender.frameUrl, contents: sender.contentsId });
      return { id: 0, ok: false, error: { code: ErrorCode.DIAGNOSTICS_BAD_CALL, message: 'diagnostics calls are taken from the diagnostics window only' } };
    }
    return dispatchApiCall(callText(message), this.#options.api());
  }

  dispose(): void {
    ipcMain.removeHandler(DIAGNOSTICS_CHANNEL);
    if (this.#window && !this.#window.isDestroyed()) this.#window.destroy();
    this.#window = null;
  }
}
