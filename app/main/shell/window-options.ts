import type { BaseWindowConstructorOptions, BrowserWindowConstructorOptions } from 'electron';

/**
 * Every window of the app takes its options from a constructor here, and nowhere else:
 * test/unit/secure-windows.test.ts fails the build when a `new BrowserWindow(...)` (or any other
 * Electron window or view) is handed anything but a call to one of them. So the security checklist
 * (https://www.electronjs.org/docs/latest/tutorial/security) is written once, below, and each window
 * can only add to it.
 */

/** What every page the app shows runs with: isolated, sandboxed, no Node, the web's own rules. */
export const SECURE_WEB_PREFERENCES = Object.freeze({
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  nodeIntegrationInSubFrames: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  webviewTag: false,
  experimentalFeatures: false,
  plugins: false,
  enableWebSQL: false,
  navigateOnDragDrop: false,
  // The spellchecker downloads dictionaries; the page has nothing to spell-check.
  spellcheck: false,
  safeDialogs: true,
});

/**
 * The diagnostics page's session: in memory (no `persist:` prefix), so it writes no cookies or
 * cache to disk, and its own, so that its protocol handler and permission policy
 * (diagnostics-session.ts) apply to this page alone.
 */
export const DIAGNOSTICS_PARTITION = 'outpost-diagnostics';

export const DIAGNOSTICS_WINDOW_SIZE = { width: 900, height: 700, minWidth: 640, minHeight: 480 } as const;

/** The page's background before its stylesheet paints, so that opening it does not flash. */
export const PAGE_BACKGROUND = { light: '#ffffff', dark: '#1e1e1e' } as const;

/**
 * The hidden session window (session-window.ts): a BaseWindow, which has no web contents at all,
 * so there is no page, no renderer process and nothing to sandbox; it exists only so that Windows
 * has a top-level window to send its session messages to. Never shown, never focused, not in the
 * taskbar.
 */
export function sessionWindowOptions(): BaseWindowConstructorOptions {
  return {
    show: false,
    width: 1,
    height: 1,
    frame: false,
    resizable: false,
    focusable: false,
    skipTaskbar: true,
    title: 'Outpost session',
  };
}

export interface DiagnosticsWindowInput {
  /** The sandboxed preload (dist/app/preload/preload.cjs): the page's only way to the agent. */
  readonly preload: string;
  /** The window's icon (Windows and Linux; macOS takes the app's), or null for the default. */
  readonly icon: string | null;
  /** The system prefers dark colours (Electron's nativeTheme.shouldUseDarkColors). */
  readonly dark: boolean;
  /** A development build may open the developer tools; a release never can (DEVELOPMENT_BUILD). */
  readonly development: boolean;
}

/** The diagnostics window: hidden until its page is ready to show, then at its default size. */
export function diagnosticsWindowOptions(input: DiagnosticsWindowInput): BrowserWindowConstructorOptions {
  return {
    ...DIAGNOSTICS_WINDOW_SIZE,
    show: false,
    title: 'Outpost diagnostics',
    backgroundColor: input.dark ? PAGE_BACKGROUND.dark : PAGE_BACKGROUND.light,
    autoHideMenuBar: true,
    ...(input.icon !== null && { icon: input.icon }),
    webPreferences: {
      ...SECURE_WEB_PREFERENCES,
      preload: input.preload,
      partition: DIAGNOSTICS_PARTITION,
      devTools: input.development,
    },
  };
}
