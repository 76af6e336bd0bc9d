/**
 * The `outpost` command's entry: bundled with its chunks (tools/build/app-bundle.ts) into
 * dist/app/main/outpost.js, which bin/outpost.js runs, and into a package's app.asar, which the
 * stand-in Electron runs. It runs the command on import and sets the exit code (no top-level await:
 * a CommonJS bundle of it must load too, test/integration/release-build.test.ts).
 */
import { main } from './headless.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
