import axios, { type AxiosInstance } from 'axios';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { describeError, ErrorCode, isOutpostError, OutpostError } from '../../../base/errors.js';

/**
 * GET into memory, refusing the answer as soon as it is longer than `maxLength` bytes (endless data:
 * axios stops reading there, or before a byte when the announced length is already too long), within
 * one deadline for the whole answer, body included (slow retrieval). A non-2xx status is a
 * DownloadHTTPError, as tuf-js expects (a 404 for the next root means there is none).
 */
export async function fetchBytes(http: AxiosInstance, url: string, maxLength: number, timeoutMs: number, signal?: AbortSignal): Promise<Buffer> {
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const deadline = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await http.get<ArrayBuffer>(url, { responseType: 'arraybuffer', maxContentLength: maxLength, signal: controller.signal, validateStatus: () => true });
    if (response.status < 200 || response.status > 299) throw new DownloadHTTPError(`GET ${url}: HTTP ${response.status}`, response.status);
    return Buffer.from(response.data);
  } catch (error) {
    if (isOutpostError(error) || error instanceof DownloadHTTPError) throw error;
    if (axios.isAxiosError(error) && error.message.startsWith('maxContentLength size of')) {
      throw new OutpostError(ErrorCode.UPDATE_VERIFY, `Update refused: the answer for ${url} was longer than the ${maxLength} bytes allowed for it (endless data?), so it was cut off there and not used.`);
    }
    const why = signal?.aborted ? 'the agent is shutting down' : controller.signal.aborted ? `no complete answer within ${timeoutMs} ms` : axios.isAxiosError(error) ? (error.code ?? error.message) : describeError(error);
    throw new OutpostError(ErrorCode.UPDATE_DOWNLOAD, `Cannot reach the release feed: GET ${url} failed (${why}).`, { cause: error });
  } finally {
    clearTimeout(deadline);
    signal?.removeEventListener('abort', onAbort);
  }
}
