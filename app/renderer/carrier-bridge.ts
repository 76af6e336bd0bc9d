import type { ActionResult, DiagnosticsApi, DiagnosticsBundle, DiagnosticsView, ReadParams } from '../common/diagnostics.js';
import { type Carrier, CarrierError, checkedResult, type LinkState } from './carrier.js';

/**
 * Carrier 1, the desktop app: the preload's `contextBridge` object. The link is the app itself, so
 * it is always open; results are checked all the same, and a rejection keeps its ERR_* code when
 * it has one.
 */
export class BridgeCarrier implements Carrier {
  readonly #bridge: DiagnosticsApi;

  constructor(bridge: DiagnosticsApi) {
    this.#bridge = bridge;
  }

  async read(params: ReadParams): Promise<DiagnosticsView> {
    return checkedResult('read', await this.#call(() => this.#bridge.read(params)));
  }

  async checkNow(): Promise<ActionResult> {
    return checkedResult('check_now', await this.#call(() => this.#bridge.checkNow()));
  }

  async openLogFolder(): Promise<ActionResult> {
    return checkedResult('open_log_folder', await this.#call(() => this.#bridge.openLogFolder()));
  }

  async bundle(): Promise<DiagnosticsBundle> {
    return checkedResult('bundle', await this.#call(() => this.#bridge.bundle()));
  }

  watchLink(listener: (link: LinkState) => void): () => void {
    listener({ kind: 'open' });
    return () => {};
  }

  dispose(): void {}

  async #call(run: () => Promise<unknown>): Promise<unknown> {
    try {
      return await run();
    } catch (error) {
      const code = typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : null;
      if (code === null) throw error;
      throw new CarrierError(code, error instanceof Error ? error.message : String(error));
    }
  }
}

const METHODS: readonly (keyof DiagnosticsApi)[] = ['read', 'checkNow', 'openLogFolder', 'bundle'];

/**
 * The preload's object when this page runs in the desktop app (null in a browser). An object that
 * lacks a method is a broken build: every call then fails saying so, rather than the page taking
 * the app for a browser.
 */
export function bridgeIn(global: object, name: string): DiagnosticsApi | null {
  if (!(name in global)) return null;
  const candidate: unknown = Reflect.get(global, name);
  const missing = METHODS.filter((method) => typeof candidate !== 'object' || candidate === null || typeof Reflect.get(candidate, method) !== 'function');
  if (missing.length === 0) return candidate as DiagnosticsApi;
  const broken = () => Promise.reject(new Error(`the desktop app's diagnostics bridge (window.${name}) lacks ${missing.join(', ')}: this build of the app is broken; reinstall it`));
  return { read: broken, checkNow: broken, openLogFolder: broken, bundle: broken };
}
