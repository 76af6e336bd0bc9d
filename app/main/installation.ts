import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestSwitch, testSwitch } from '../base/build-flavor.js';
import { z } from 'zod';
import { tryParseJson } from '../base/jsonl.js';
import { describeFsError, ErrorCode, OutpostError } from '../base/errors.js';
import { APP_VERSION } from '../base/version.js';
import { ORGANISATION_FILE, OrganisationFile } from '../common/organisation.js';
import { type Config, DEFAULT_CONFIG } from './core/config-schema.js';
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
  /** What a first start writes as config.json: the defaults, with the backend the organisation built in (a package's `organisation.json`). */
  readonly defaultConfig: Config;
}

/**
 * Set by the packaged app's bundle (tools/build/app-bundle.ts): its code runs from
 * `<install>/resources/app.asar/app/main/`, and the organisation's files lie in `resources/`
 * (electron-builder's extraResources). A checkout's build leaves it undefined.
 */
declare const __OUTPOST_PACKAGED__: boolean | undefined;
const PACKAGED = typeof __OUTPOST_PACKAGED__ !== 'undefined' && __OUTPOST_PACKAGED__;


/** What the agent reads of its installation's package.json. */
const InstalledPackage = z.object({ version: z.string().regex(/^\d+\.\d+\.\d+/) });

/** The bindings the updater's single executable loads from beside itself (Windows: Restart Manager, process times). */
const UPDATER_NATIVE_PACKAGES = ['ffi-rs'];

/** The folder holding this build's package.json (dist/app/main/ -> three levels up); in a package, `resources/` (app.asar/app/main/ -> three levels up). */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * This installation, or, in a development build with OUTPOST_INSTALL_DIR (tests and the demo), the
 * folder named there: the agent then runs as if it were installed in that folder, with that folder's
 * version. A release ignores it: what an elevated agent starts must not come from the environment.
 */
export function locateInstallation(env: NodeJS.ProcessEnv): Installation {
  return PACKAGED ? packagedInstallation(PACKAGE_ROOT) : checkoutInstallation(env);
}

/**
 * The packaged app (electron-builder's layout): the executable and Electron's files in the
 * installation folder, the app in `resources/app.asar`, the native packages in
 * `resources/app.asar.unpacked/node_modules`, and beside them the updater's executable, the trust
 * root and the organisation's build config. The version is the one the bundle was built as.
 */
function packagedInstallation(resources: string): Installation {
  const trust = path.join(resources, 'trust', 'root.json');
  const executable = path.join(resources, 'updater', process.platform === 'win32' ? 'outpost-updater.exe' : 'outpost-updater');
  return {
    dir: path.dirname(resources),
    version: APP_VERSION,
    trustedRootFile: fs.existsSync(trust) ? trust : null,
    updater: { kind: 'executable', executable, packages: UPDATER_NATIVE_PACKAGES },
    pageDir: path.join(resources, 'app.asar', 'app', 'renderer'),
    defaultConfig: organisationDefaults(path.join(resources, ORGANISATION_FILE)),
  };
}

/** DEFAULT_CONFIG with the organisation's backend; a package built without the file keeps the loopback defaults. */
function organisationDefaults(file: string): Config {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return DEFAULT_CONFIG;
    throw new OutpostError(ErrorCode.CONFIG_INVALID, `Cannot read the organisation's build config ${file}: ${describeFsError(error)}.`, { cause: error });
  }
  const parsed = OrganisationFile.safeParse(tryParseJson(text));
  if (!parsed.success) throw new OutpostError(ErrorCode.CONFIG_INVALID, `${file} is not a valid build config: ${z.prettifyError(parsed.error)}. Rebuild the package.`);
  return { ...DEFAULT_CONFIG, backend: { ...parsed.data.backend, ca_file: null } };
}

/** A checkout's build, or, in a development build, the installation OUTPOST_INSTALL_DIR names. */
function checkoutInstallation(env: NodeJS.ProcessEnv): Installation {
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
    defaultConfig: DEFAULT_CONFIG,
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
