import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const PackageJson = z.object({ version: z.string().min(1) });

/** The version in `dir`/package.json, or null when there is none to read (no file, not JSON, no version). */
export function packageVersion(dir: string): string | null {
  try {
    return PackageJson.parse(JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))).version;
  } catch {
    return null;
  }
}
