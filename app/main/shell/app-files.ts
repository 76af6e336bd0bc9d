import path from 'node:path';
import type { Platform } from '../platform/index.js';
import type { TrayIconState } from './tray-menu.js';

/**
 * The files the shell loads from the built app, all under dist/ (tools/build/app-assets.ts puts
 * them there; test/integration/icons.test.ts checks that every name below exists after a build).
 */
export interface AppFiles {
  /** The diagnostics page (index.html and what it loads). */
  readonly renderer: string;
  /** The sandboxed preload script, one CommonJS file. */
  readonly preload: string;
  /** The icons, one folder per OS. */
  readonly icons: string;
}

export function appFiles(distDir: string): AppFiles {
  return {
    renderer: path.join(distDir, 'app', 'renderer'),
    preload: path.join(distDir, 'app', 'preload', 'preload.cjs'),
    icons: path.join(distDir, 'assets', 'icons'),
  };
}

/**
 * Each OS's tray icon for a state, relative to AppFiles.icons: a multi-size ICO on Windows (the
 * shell picks the size for the display's scale), a template PNG on macOS (its `@2x` twin beside it
 * is found by Electron; the menu bar colours it), a 24 px PNG on Linux (the panel scales it).
 */
export function trayIconFile(platform: Platform['name'], state: TrayIconState): string {
  switch (platform) {
    case 'win32':
      return path.join('win32', `tray-${state}.ico`);
    case 'darwin':
      return path.join('darwin', `tray-${state}Template.png`);
    case 'linux':
      return path.join('linux', `tray-${state}-24.png`);
  }
}

/** The diagnostics window's icon (relative to AppFiles.icons); null on macOS, where windows show the app's. */
export function windowIconFile(platform: Platform['name']): string | null {
  switch (platform) {
    case 'win32':
      return path.join('win32', 'tray-idle.ico');
    case 'darwin':
      return null;
    case 'linux':
      return path.join('linux', 'tray-idle-64.png');
  }
}
