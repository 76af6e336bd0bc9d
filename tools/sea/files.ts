import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export function sha256(data: Buffer | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export function exists(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Copies `from` to `to` through a temp name in the same folder, so readers never see half a file. */
export function publish(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const staged = `${to}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.copyFileSync(from, staged);
    fs.chmodSync(staged, 0o755);
    fs.renameSync(staged, to);
  } finally {
    fs.rmSync(staged, { force: true });
  }
}
