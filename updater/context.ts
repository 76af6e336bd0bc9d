import type { Logger } from '../app/base/logger.js';
import type { UpdatePaths } from '../app/base/storage-layout.js';
import type { UpdaterJob } from '../app/common/update-files.js';
import type { Platform } from '../app/main/platform/index.js';
import type { Journal } from './journal.js';

/** What every step of a job works with. */
export interface JobContext {
  readonly job: UpdaterJob;
  /** The job's files (under its storage folder's updates/). */
  readonly files: UpdatePaths;
  readonly platform: Platform;
  readonly journal: Journal;
  readonly log: Logger;
  readonly now: () => Date;
  /** How long a file held open (antivirus, an Explorer window) may keep a rename from happening. */
  readonly heldFileRetryMs?: number;
}
