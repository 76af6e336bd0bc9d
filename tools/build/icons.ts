/** Placeholder until the shell helper lands its icon build (sharp + png-to-ico). */
import fs from 'node:fs';

export async function buildIcons(_sourceDir: string, outDir: string): Promise<void> {
  fs.mkdirSync(outDir, { recursive: true });
}
