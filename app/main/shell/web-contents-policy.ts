import { app, type WebContents } from 'electron';
import type { Logger } from '../../base/logger.js';

/**
 * No page of the app goes anywhere: the diagnostics page is one document, loaded by the main
 * process (loadURL raises none of these events), so any navigation, redirect, new window or
 * <webview> is something the page was tricked into, and is refused. Applied to every web contents
 * the app ever creates, so a window added later has it without asking. Returns what removes it.
 */
export function refuseNavigationEverywhere(log: Logger): () => void {
  const lockDown = (_event: unknown, contents: WebContents) => {
    contents.on('will-navigate', (event) => {
      log.warn('a page tried to navigate: refused', { url: event.url });
      event.preventDefault();
    });
    contents.on('will-frame-navigate', (event) => {
      if (event.isMainFrame) return; // will-navigate has it
      log.warn('a frame tried to navigate: refused', { url: event.url });
      event.preventDefault();
    });
    contents.on('will-redirect', (event) => {
      log.warn('a page was redirected: refused', { url: event.url });
      event.preventDefault();
    });
    contents.on('will-attach-webview', (event) => {
      log.warn('a page tried to attach a <webview>: refused');
      event.preventDefault();
    });
    contents.setWindowOpenHandler(({ url }) => {
      log.warn('a page tried to open a window: refused', { url });
      return { action: 'deny' };
    });
  };
  app.on('web-contents-created', lockDown);
  return () => app.off('web-contents-created', lockDown);
}
