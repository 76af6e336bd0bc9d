import path from 'node:path';
import { session, shell } from 'electron';
import { describeError, ErrorCode, OutpostError } from '../../base/errors.js';
import type { ShellHooks } from '../core/agent.js';
import type { Platform } from '../platform/index.js';
import { type AppFiles, windowIconFile } from './app-files.js';
import { prepareDiagnosticsSession } from './diagnostics-session.js';
import { DiagnosticsWindow } from './diagnostics-window.js';
import { SessionWatch } from './session-window.js';
import type { ShellAgent } from './shell-agent.js';
import { TrayIcon } from './tray.js';
import type { TrayAction } from './tray-menu.js';
import { refuseNavigationEverywhere } from './web-contents-policy.js';
import { DIAGNOSTICS_PARTITION } from './window-options.js';

export interface DesktopShellOptions {
  readonly platform: Platform['name'];
  readonly files: AppFiles;
  /** DEVELOPMENT_BUILD: developer tools in the diagnostics window. */
  readonly development: boolean;
  /** Makes Electron start this program again once it exits (app.relaunch, with the agent's own launch command). */
  readonly relaunch: () => void;
  readonly now: () => Date;
}

/** What the shell made around one agent, disposed of together. */
interface Parts {
  readonly agent: ShellAgent;
  readonly diagnostics: DiagnosticsWindow;
  readonly dispose: () => void;
}

/**
 * The desktop app around the agent: the tray, the hidden session window and the diagnostics window.
 * It is made before the agent (whose start takes `hooks`), and attached to it once it runs; a
 * request to show the diagnostics that arrives in between is kept until then.
 */
export class DesktopShell {
  readonly hooks: ShellHooks;
  readonly #options: DesktopShellOptions;
  #parts: Parts | undefined;
  #showWhenAttached = false;

  constructor(options: DesktopShellOptions) {
    this.#options = options;
    this.hooks = { kind: 'electron', showDiagnostics: () => this.showDiagnostics(), openFolder };
  }

  /**
   * Call once, after app.whenReady() and the agent's start. If a part cannot be made, those made
   * before it are disposed of and the error is thrown.
   */
  attach(agent: ShellAgent): void {
    const { platform, files, development, now } = this.#options;
    const log = agent.log.child('shell');
    const made: (() => void)[] = [];
    const disposeAll = () => {
      for (const dispose of made.splice(0).reverse()) dispose();
    };
    try {
      made.push(refuseNavigationEverywhere(log));
      made.push(prepareDiagnosticsSession(session.fromPartition(DIAGNOSTICS_PARTITION), files.renderer, log));
      const icon = windowIconFile(platform);
      const diagnostics = new DiagnosticsWindow({
        preload: files.preload,
        icon: icon === null ? null : path.join(files.icons, icon),
        development,
        api: () => agent.diagnostics(),
        log,
      });
      made.push(() => diagnostics.dispose());
      const tray = new TrayIcon({ platform, iconsDir: files.icons, agent, run: (action) => this.#run(action), now, log: log.child('tray') });
      made.push(() => tray.dispose());
      const sessionWatch = new SessionWatch(platform, agent, log.child('session'));
      made.push(() => sessionWatch.dispose());
      this.#parts = { agent, diagnostics, dispose: disposeAll };
    } catch (error) {
      disposeAll();
      throw error;
    }
    if (this.#showWhenAttached) this.showDiagnostics();
    this.#showWhenAttached = false;
  }

  showDiagnostics(): void {
    if (this.#parts) this.#parts.diagnostics.show();
    else this.#showWhenAttached = true;
  }

  #run(action: TrayAction): void {
    const parts = this.#parts;
    if (!parts) return;
    const { agent, diagnostics } = parts;
    switch (action) {
      case 'check_now':
        void agent
          .diagnostics()
          .checkNow()
          .then(
            (result) => agent.log.info(`tray: check for updates: ${result.message}`),
            (error: unknown) => agent.log.warn(`tray: the check for updates did not start: ${describeError(error)}`),
          );
        return;
      case 'show_diagnostics':
        diagnostics.show();
        return;
      case 'restart':
        this.#options.relaunch();
        void agent.stop('restart requested from the tray');
        return;
      case 'quit':
        void agent.stop('quit requested from the tray');
        return;
    }
  }

  dispose(): void {
    this.#parts?.dispose();
    this.#parts = undefined;
  }
}

/** ShellHooks.openFolder: the system's file manager; Electron answers with an error message, or '' when it worked. */
async function openFolder(dir: string): Promise<void> {
  const problem = await shell.openPath(dir);
  if (problem !== '') throw new OutpostError(ErrorCode.PLATFORM_CALL, `Cannot open ${dir} in the file manager: ${problem}.`);
}
