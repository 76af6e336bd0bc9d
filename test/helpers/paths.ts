import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/..., compiled). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const OUTPOST_BIN = path.join(REPO_ROOT, 'bin', 'outpost.js');
export const DIST = path.join(REPO_ROOT, 'dist');

/** A fresh folder, removed when the test ends. */
export function tempDir(t: { after: (fn: () => void) => void }, prefix = 'outpost-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
