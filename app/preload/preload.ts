/**
 * The diagnostics page's only way to the agent: exactly the DiagnosticsApi (app/common/diagnostics.ts)
 * as `window.outpostDiagnostics`, carried over Electron's IPC to the main process, which checks the
 * sender and the call (shell/diagnostics-window.ts). Sandboxed: it can require 'electron' and
 * nothing else, so the build bundles it with zod into one CommonJS file.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { DIAGNOSTICS_CHANNEL, DIAGNOSTICS_GLOBAL } from '../common/diagnostics.js';
import { diagnosticsClient } from './diagnostics-client.js';

contextBridge.exposeInMainWorld(
  DIAGNOSTICS_GLOBAL,
  diagnosticsClient((call) => ipcRenderer.invoke(DIAGNOSTICS_CHANNEL, call)),
);
