// First: it configures zod before any module below makes a schema.
import './zod-without-eval.js';
import { DIAGNOSTICS_GLOBAL, DIAGNOSTICS_WS_PATH, type DiagnosticsBundle } from '../common/diagnostics.js';
import type { Carrier } from './carrier.js';
import { BridgeCarrier, bridgeIn } from './carrier-bridge.js';
import { SocketCarrier } from './carrier-socket.js';
import { DiagnosticsPage } from './page.js';
import { Poller } from './poller.js';

/**
 * The diagnostics page's entry, the same for both carriers: the desktop app's preload bridge when
 * the page has one, else a WebSocket to the `outpost diagnostics` that served it.
 */

const POLL_INTERVAL_MS = 1000;

function carrierFor(page: Window): Carrier {
  const bridge = bridgeIn(page, DIAGNOSTICS_GLOBAL);
  if (bridge) return new BridgeCarrier(bridge);
  const scheme = page.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return new SocketCarrier({ url: `${scheme}//${page.location.host}${DIAGNOSTICS_WS_PATH}`, firstRetryMs: 500, maxRetryMs: 5000, callTimeoutMs: 15_000 });
}

function save(bundle: DiagnosticsBundle): void {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([bundle.text], { type: 'text/plain;charset=utf-8' }));
  link.download = bundle.file_name;
  link.click();
  // The download has taken the blob by the time the click returns; the URL is not needed after.
  URL.revokeObjectURL(link.href);
}

function start(): void {
  const carrier = carrierFor(window);
  // The skeleton goes on screen at once; the first read fills it in.
  const page = new DiagnosticsPage(document.body, {
    api: carrier,
    refresh: () => poller.readNow(),
    copy: (text) => navigator.clipboard.writeText(text),
    save,
  });
  const poller = new Poller({
    api: carrier,
    intervalMs: POLL_INTERVAL_MS,
    onView: (view) => page.showView(view),
    onFailure: (error) => page.showReadFailure(error),
  });
  const stopWatching = carrier.watchLink((link) => {
    page.showLink(link);
    if (link.kind === 'open') poller.readNow();
  });
  window.addEventListener(
    'pagehide',
    () => {
      stopWatching();
      poller.dispose();
      carrier.dispose();
    },
    { once: true },
  );
}

start();
