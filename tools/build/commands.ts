import fs from 'node:fs';
import path from 'node:path';

/**
 * How to run npm from a build tool on any OS: through the npm that runs this script (`npm run ...`
 * sets npm_execpath to its CLI) with this Node, else `npm` from the PATH, through a shell on Windows,
 * where npm is a `.cmd` that Node does not start without one.
 */
export function npmCommand(args: readonly string[]): { command: string; args: string[]; shell: boolean } {
  const cli = process.env.npm_execpath;
  if (cli && /\.c?js$/.test(cli)) return { command: process.execPath, args: [cli, ...args], shell: false };
  return { command: 'npm', args: [...args], shell: process.platform === 'win32' };
}

/** The executable `command` on the PATH (with `.exe` on Windows), or null. */
export function findOnPath(command: string): string | null {
  const name = process.platform === 'win32' ? `${command}.exe` : command;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}
