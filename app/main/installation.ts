import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestSwitch, testSwitch } from '../base/build-flavor.js';
import { z } from 'zod';
import { tryParseJson } from '../base/jsonl.js';
import { describeFsError, ErrorCode, OutpostError } from '../base/errors.js';
import type { UpdaterProgram } from './core/update/handoff.js';

/** What the agent knows of the copy of Outpost it runs as. */
export interface Installation {
  /** The application folder: the update pipeline takes unchanged files from here. */
  readonly dir: string;
  /** Its package.json version. */
  readonly version: string;
  /** The TUF root built into it (`trust/root.json`), or null for a build without one (no updates). */
  readonly trustedRootFile: string | null;
  /** The standalone updater of this build. */
  readonly updater: UpdaterProgram;
  /** The diagnostics page of this build (dist/app/renderer): the desktop app's window and `outpost diagnostics` serve it. */
  readonly pageDir: string;
}

/** What the agent reads of its installation's package.json. */
const InstalledPackage = z.object({ version: z.string().regex(/^\d+\.\d+\.\d+/) });

/** The bindings the updater's single executable loads from beside itself (Windows: Restart Manager, process times). */
const UPDATER_NATIVE_PACKAGES = ['ffi-rs'];

/** The folder holding this build's package.json (dist/app/main/ -> three levels up). */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * This installation, or, in a development build with OUTPOST_INSTALL_DIR (tests and the demo), the
 * folder named there: the agent then runs as if it were installed in that folder, with that folder's
 * version. A release ignores it: what an elevated agent starts must not come from the environment.
 */
export function locateInstallation(env: NodeJS.ProcessEnv): Installation {
  const override = testSwitch(env, TestSwitch.INSTALL_DIR);
  const dir = override ? path.resolve(override) : PACKAGE_ROOT;
  const manifest = path.join(dir, 'package.json');
  let text: string;
  try {
    text = fs.readFileSync(manifest, 'utf8');
  } catch (error) {
    throw new OutpostError(ErrorCode.CONFIG_INVALID, `Cannot read the installation's version from ${manifest}: ${describeFsError(error)}.`, { cause: error });
  }
  const parsed = InstalledPackage.safeParse(tryParseJson(text));
  if (!parsed.success) throw new OutpostError(ErrorCode.CONFIG_INVALID, `${manifest} has no semantic version ("version": "1.2.3").`);
  const { version } = parsed.data;
  const trust = path.join(dir, 'trust', 'root.json');
  return {
    dir,
    version,
    trustedRootFile: fs.existsSync(trust) ? trust : null,
    updater: locateUpdater(dir, env),
    pageDir: path.join(PACKAGE_ROOT, 'dist', 'app', 'renderer'),
  };
}

/**
 * The updater's single executable: the one a release ships in `<installation>/updater/`, or in a
 * development build OUTPOST_UPDATER_EXE (tests and the demo); without either (a checkout), the
 * updater script on this Node.
 */
function locateUpdater(dir: string, env: NodeJS.ProcessEnv): UpdaterProgram {
  const shipped = path.join(dir, 'updater', process.platform === 'win32' ? 'outpost-updater.exe' : 'outpost-updater');
  const override = testSwitch(env, TestSwitch.UPDATER_EXE);
  const executable = override ? path.resolve(override) : fs.existsSync(shipped) ? shipped : null;
  if (executable === null) return { kind: 'script', command: process.execPath, args: [path.join(PACKAGE_ROOT, 'bin', 'outpost-updater.js')] };
  return { kind: 'executable', executable, packages: UPDATER_NATIVE_PACKAGES };
}
