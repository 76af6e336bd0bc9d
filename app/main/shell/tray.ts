import path from 'node:path';
import { Menu, type NativeImage, nativeImage, Tray } from 'electron';
import type { Logger } from '../../base/logger.js';
import type { Platform } from '../platform/index.js';
import { trayIconFile } from './app-files.js';
import type { ShellAgent } from './shell-agent.js';
import { isActionEnabled, menuTemplate, type TrayAction, type TrayIconState, type TrayModel, trayIconFor, trayMenu, trayToolTip } from './tray-menu.js';

/** "Last check: 5 minutes ago" goes stale without a change of state: the menu is rebuilt this often too. */
const REFRESH_MS = 60_000;

export interface TrayOptions {
  readonly platform: Platform['name'];
  /** AppFiles.icons. */
  readonly iconsDir: string;
  readonly agent: ShellAgent;
  readonly run: (action: TrayAction) => void;
  readonly now: () => Date;
  readonly log: Logger;
}

/**
 * The notification-area icon: its image, tooltip and menu are tray-menu.ts's answers for the agent's
 * state, rebuilt when the state changes (and each minute, for the relative time of the last check).
 */
export class TrayIcon {
  readonly #options: TrayOptions;
  readonly #tray: Tray;
  readonly #unsubscribe: () => void;
  readonly #refresh: NodeJS.Timeout;
  #icon: TrayIconState;

  constructor(options: TrayOptions) {
    this.#options = options;
    const model = this.#model();
    this.#icon = trayIconFor(model.state, model.lastError);
    this.#tray = new Tray(this.#image(this.#icon));
    // Windows users expect a click on the icon to open the app; elsewhere a click opens the menu.
    if (options.platform === 'win32') this.#tray.on('click', () => this.#run('show_diagnostics'));
    this.#render(model);
    this.#unsubscribe = options.agent.state.subscribe((change) => {
      if (change.from !== change.to) this.#render(this.#model());
    });
    this.#refresh = setInterval(() => this.#render(this.#model()), REFRESH_MS);
  }

  #model(): TrayModel {
    const { agent, now } = this.#options;
    const status = agent.status();
    return {
      version: status.version,
      state: agent.state.state,
      lastCheck: status.last_update_check === null ? null : new Date(status.last_update_check),
      lastError: status.update.last_error,
      // Config tray.show_quit: a managed machine may take "Quit" out of the menu.
      showQuit: agent.config.tray.show_quit,
      now: now(),
    };
  }

  #render(model: TrayModel): void {
    const icon = trayIconFor(model.state, model.lastError);
    if (icon !== this.#icon) {
      this.#tray.setImage(this.#image(icon));
      this.#icon = icon;
    }
    this.#tray.setToolTip(trayToolTip(model));
    this.#tray.setContextMenu(Menu.buildFromTemplate(menuTemplate(trayMenu(model), (action) => this.#run(action))));
  }

  /** The menu may have been open across a change of state: the action is checked again now. */
  #run(action: TrayAction): void {
    const state = this.#options.agent.state.state;
    if (!isActionEnabled(action, state)) {
      this.#options.log.info(`tray: "${action}" ignored in ${state}`);
      return;
    }
    this.#options.run(action);
  }

  #image(state: TrayIconState): NativeImage {
    const { platform, iconsDir, log } = this.#options;
    const file = path.join(iconsDir, trayIconFile(platform, state));
    const image = nativeImage.createFromPath(file);
    if (image.isEmpty()) log.warn(`the tray icon ${file} is missing or unreadable`);
    // The menu bar draws a template image in its own colours (light, dark, highlighted).
    if (platform === 'darwin') image.setTemplateImage(true);
    return image;
  }

  dispose(): void {
    clearInterval(this.#refresh);
    this.#unsubscribe();
    this.#tray.destroy();
  }
}
