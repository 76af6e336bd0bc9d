/**
 * Set to `true` by the release bundles (esbuild `define`, tools/build/bundle.ts); never defined in a
 * checkout's build (tsc), which is a development build.
 */
declare const __OUTPOST_RELEASE__: boolean | undefined;

/**
 * Whether this is a development build (a checkout, the tests, the demo). Test switches that choose what
 * an agent runs or trusts, or make it crash on purpose, work only here: a release bundle folds this to
 * false, so an environment variable set on a user's machine cannot steer an installed (maybe elevated)
 * agent or updater.
 */
export const DEVELOPMENT_BUILD: boolean = typeof __OUTPOST_RELEASE__ === 'undefined' || !__OUTPOST_RELEASE__;

/** The switches only a development build reads (each ignored, and absent from the bundle, in a release). */
export const TestSwitch = {
  /** `<UPDATING_STATE>:<file>`: the agent stays in that state until the file exists, so a test acts while it is there. */
  HOLD_STATE: 'OUTPOST_TEST_HOLD_STATE',
  /** `<step>:<phase>`: the updater SIGKILLs itself right after journaling that entry (the crash tests). */
  UPDATER_CRASH_AT: 'OUTPOST_UPDATER_TEST_CRASH_AT',
  /** The updater executable an agent hands over to, instead of the installation's. */
  UPDATER_EXE: 'OUTPOST_UPDATER_EXE',
  /** The folder an agent runs as if installed in (tests and the demo install versions into temp folders). */
  INSTALL_DIR: 'OUTPOST_INSTALL_DIR',
} as const;
export type TestSwitch = (typeof TestSwitch)[keyof typeof TestSwitch];

/** A test switch's value: from the environment in a development build, never in a release. */
export function testSwitch(env: NodeJS.ProcessEnv, name: TestSwitch): string | undefined {
  return DEVELOPMENT_BUILD ? env[name] : undefined;
}
