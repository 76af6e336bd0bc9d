import fs from 'node:fs';
import { ErrorCode, errnoCode, OutpostError } from '../base/errors.js';
import { ENROLLMENT_SECRET } from '../common/enrollment.js';
import { keptCredentials } from './core/backend/agent-credentials.js';
import { locateStorage, prepareStorage } from './core/storage.js';
import type { Platform } from './platform/index.js';

/**
 * `outpost --set-enrollment-secret FILE`: keeps the organisation's enrollment secret where this
 * storage folder's agent looks for it (kept-secret.ts), creating the folder with its permissions
 * if the agent never ran (installers run this before its first start). The secret comes from a
 * file or stdin, never from the command line, which other users can read in the process list.
 * Returns the sentence that says where it went; the secret itself is never printed.
 */
export function setEnrollmentSecret(platform: Platform, env: NodeJS.ProcessEnv, file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new OutpostError(ErrorCode.BACKEND_CREDENTIAL, `Cannot read the enrollment secret from ${file === '-' ? 'stdin' : file}: ${errnoCode(error) ?? String(error)}.`, { cause: error });
  }
  const secret = text.trim();
  if (!ENROLLMENT_SECRET.test(secret)) {
    throw new OutpostError(ErrorCode.BACKEND_CREDENTIAL, `${file === '-' ? 'stdin' : file} does not hold an enrollment secret: one line of 32 to 256 characters A-Z a-z 0-9 _ - (outpost-server new-enrollment-secret makes one).`);
  }
  const elevated = platform.isElevated();
  const { paths } = prepareStorage(platform, locateStorage(platform, env, elevated), elevated);
  const where = keptCredentials(platform, paths, elevated).enrollment.write(secret);
  return `enrollment secret kept in ${where}; the agent enrolls with it when it next talks to its backend`;
}
