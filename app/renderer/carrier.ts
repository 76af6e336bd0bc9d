import { prettifyError, type z } from 'zod';
import { API_RESULTS, type ApiMethod, type DiagnosticsApi } from '../common/diagnostics.js';

/**
 * What the page needs of whatever carries its calls to the agent: the one API, and the state of the
 * link under it (the desktop app's bridge is always up; the headless page's WebSocket can drop).
 */
export interface Carrier extends DiagnosticsApi {
  /** Calls `listener` with the link's state now and at each change; returns the way to stop. */
  watchLink(listener: (link: LinkState) => void): () => void;
  dispose(): void;
}

export type LinkState =
  | { readonly kind: 'connecting' }
  | { readonly kind: 'open' }
  /** Lost (or never made): the next attempt, counted from 1, comes after `retryInMs`. */
  | { readonly kind: 'down'; readonly attempt: number; readonly retryInMs: number };

/** A call the agent's side answered with an error: its stable code (ERR_*) and its sentence. */
export class CarrierError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'CarrierError';
    this.code = code;
  }
}

export function hasCode(error: unknown, code: string): boolean {
  return error instanceof CarrierError && error.code === code;
}

/** What each method's promise gives. */
export type Results = { readonly [M in ApiMethod]: z.infer<(typeof API_RESULTS)[M]> };

/** A method's result checked against its schema: the page trusts nothing that crossed a process boundary. */
export function checkedResult<M extends ApiMethod>(method: M, value: unknown): Results[M] {
  const parsed = API_RESULTS[method].safeParse(value);
  if (!parsed.success) throw new Error(`The agent answered ${method} with something this page does not understand: ${prettifyError(parsed.error)}`);
  return parsed.data as Results[M];
}
