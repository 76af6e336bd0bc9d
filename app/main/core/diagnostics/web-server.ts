// TEMPORARY stand-in until the web-server branch merges (so that main type-checks); replaced by it.
import type { Logger } from '../../../base/logger.js';
import type { DiagnosticsApi } from '../../../common/diagnostics.js';

export class DiagnosticsWebServer {
  readonly url = '';
  static async start(_options: { api: DiagnosticsApi; pageDir: string; log: Logger }): Promise<DiagnosticsWebServer> {
    throw new Error('not merged yet');
  }
  async close(): Promise<void> {}
}
