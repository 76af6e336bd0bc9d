import { z } from 'zod';
import { describeError, ErrorCode, isOutpostError } from '../../../base/errors.js';
import { tryParseJson } from '../../../base/jsonl.js';
import { API_MAX_CALL_BYTES, ApiCall, type ApiResult, type DiagnosticsApi } from '../../../common/diagnostics.js';

/**
 * The page's side of a carrier hands every message from the page here: it is checked against
 * ApiCall (size first), run on the API, and answered with an ApiResult. Both carriers use it (the
 * Electron shell's ipcMain handler, the loopback WebSocket of `outpost diagnostics`), so a message
 * is refused the same way whichever carried it. Never throws.
 */
export async function dispatchApiCall(message: string, api: DiagnosticsApi): Promise<ApiResult> {
  if (Buffer.byteLength(message) > API_MAX_CALL_BYTES) return refused(0, `a call may be at most ${API_MAX_CALL_BYTES} bytes`);
  const parsed = ApiCall.safeParse(tryParseJson(message));
  if (!parsed.success) {
    const id = z.object({ id: z.number().int().nonnegative() }).safeParse(tryParseJson(message));
    return refused(id.success ? id.data.id : 0, `not a diagnostics call: ${z.prettifyError(parsed.error)}`);
  }
  const call = parsed.data;
  try {
    return { id: call.id, ok: true, result: await run(call, api) };
  } catch (error) {
    return { id: call.id, ok: false, error: { code: isOutpostError(error) ? error.code : ErrorCode.INTERNAL, message: describeError(error) } };
  }
}

function run(call: ApiCall, api: DiagnosticsApi): Promise<unknown> {
  switch (call.method) {
    case 'read':
      return api.read(call.params);
    case 'check_now':
      return api.checkNow();
    case 'open_log_folder':
      return api.openLogFolder();
    case 'bundle':
      return api.bundle();
  }
}

/** A call refused before it ran (id 0 when the call's own id could not be read). */
function refused(id: number, message: string): ApiResult {
  return { id, ok: false, error: { code: ErrorCode.DIAGNOSTICS_BAD_CALL, message } };
}
