import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { writeFileAtomic } from '../../base/durable-file.js';

/** The agent's stable id (error reports, staged rollout): made once, kept in the storage folder. */
export function readOrCreateAgentId(file: string): string {
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f-]{36}$/.test(id)) return id;
  } catch {
    // first start
  }
  const id = randomUUID();
  writeFileAtomic(file, `${id}\n`);
  return id;
}
