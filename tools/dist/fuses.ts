/**
 * Electron's fuses for the packaged app (Electron's security checklist), as electron-builder writes
 * them into the executable through @electron/fuses, and the check that reads them back. Kept here
 * rather than in electron-builder.yml so that the build and its check use one list.
 */
import type { Configuration } from 'electron-builder';

export const ELECTRON_FUSES = {
  /** The executable never runs as plain Node (ELECTRON_RUN_AS_NODE): the updater is its own executable. */
  runAsNode: false,
  enableCookieEncryption: true,
  /** No NODE_OPTIONS, no --inspect: nothing in the environment or on the command line injects code. */
  enableNodeOptionsEnvironmentVariable: false,
  enableNodeCliInspectArguments: false,
  /** app.asar is checked against the hash electron-builder stamps into the executable, and only it is loaded. */
  enableEmbeddedAsarIntegrityValidation: true,
  onlyLoadAppFromAsar: true,
  loadBrowserProcessSpecificV8Snapshot: false,
  /** The diagnostics page loads over its own scheme: file:// needs no extra privileges. */
  grantFileProtocolExtraPrivileges: false,
} as const satisfies NonNullable<Configuration['electronFuses']>;

/** @electron/fuses' names for the same fuses (its FuseV1Options). */
const WIRE_NAMES: Record<keyof typeof ELECTRON_FUSES, string> = {
  runAsNode: 'RunAsNode',
  enableCookieEncryption: 'EnableCookieEncryption',
  enableNodeOptionsEnvironmentVariable: 'EnableNodeOptionsEnvironmentVariable',
  enableNodeCliInspectArguments: 'EnableNodeCliInspectArguments',
  enableEmbeddedAsarIntegrityValidation: 'EnableEmbeddedAsarIntegrityValidation',
  onlyLoadAppFromAsar: 'OnlyLoadAppFromAsar',
  loadBrowserProcessSpecificV8Snapshot: 'LoadBrowserProcessSpecificV8Snapshot',
  grantFileProtocolExtraPrivileges: 'GrantFileProtocolExtraPrivileges',
};

/** The fuses read back from `executable`: each asked-for fuse with what the executable holds. */
export async function readFuses(executable: string): Promise<{ fuse: keyof typeof ELECTRON_FUSES; wanted: boolean; actual: boolean | null }[]> {
  const { getCurrentFuseWire, FuseV1Options, FuseState } = await import('@electron/fuses');
  const wire = (await getCurrentFuseWire(executable)) as unknown as Record<number, number | undefined>;
  return (Object.keys(ELECTRON_FUSES) as (keyof typeof ELECTRON_FUSES)[]).map((fuse) => {
    const state = wire[FuseV1Options[WIRE_NAMES[fuse] as keyof typeof FuseV1Options]];
    const actual = state === FuseState.ENABLE ? true : state === FuseState.DISABLE ? false : null;
    return { fuse, wanted: ELECTRON_FUSES[fuse], actual };
  });
}
