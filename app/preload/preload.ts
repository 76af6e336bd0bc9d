// Placeholder until the shell lands.
import { contextBridge } from 'electron';
import { DIAGNOSTICS_GLOBAL } from '../common/diagnostics.js';

contextBridge.exposeInMainWorld(DIAGNOSTICS_GLOBAL, {});
