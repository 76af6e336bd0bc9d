// Placeholder until the renderer lands.
import { DIAGNOSTICS_GLOBAL } from '../common/diagnostics.js';

const root = document.getElementById('app');
if (root) root.textContent = `Outpost diagnostics (${DIAGNOSTICS_GLOBAL in window ? 'desktop' : 'browser'})`;
