import type { z } from 'zod';
import { API_RESULTS, type ApiCall, type ApiMethod, ApiResult, type DiagnosticsApi } from '../common/diagnostics.js';

/** A call before it is numbered. */
type CallBody = ApiCall extends infer C ? (C extends ApiCall ? Omit<C, 'id'> : never) : never;
type ResultOf<M extends ApiMethod> = z.infer<(typeof API_RESULTS)[M]>;

/** Carries one numbered call to the agent and resolves with whatever came back (unchecked). */
export type Carry = (call: ApiCall) => Promise<unknown>;

/**
 * The DiagnosticsApi over a carrier: each method one numbered ApiCall, each answer checked against
 * ApiResult, its id and the method's result schema before the page sees it. A refusal or a failure
 * becomes an Error whose message ends with the code: only an error's message crosses Electron's
 * context bridge.
 */
export function diagnosticsClient(carry: Carry): DiagnosticsApi {
  let lastId = 0;
  async function invoke<M extends ApiMethod>(body: Extract<CallBody, { method: M }>): Promise<ResultOf<M>> {
    const id = ++lastId;
    const answer = ApiResult.safeParse(await carry({ id, ...body } as ApiCall));
    if (!answer.success || answer.data.id !== id) throw new Error(`The agent's answer to "${body.method}" is not a diagnostics result.`);
    if (!answer.data.ok) throw new Error(`${answer.data.error.message} (${answer.data.error.code})`);
    const result = API_RESULTS[body.method].safeParse(answer.data.result);
    if (!result.success) throw new Error(`The agent's answer to "${body.method}" does not have the shape the page expects.`);
    return result.data as ResultOf<M>;
  }
  return {
    read: (params) => invoke({ method: 'read', params }),
    checkNow: () => invoke({ method: 'check_now' }),
    openLogFolder: () => invoke({ method: 'open_log_folder' }),
    bundle: () => invoke({ method: 'bundle' }),
  };
}
