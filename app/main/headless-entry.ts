/**
 * The `outpost` command's entry for a bundle (a release build, tools/build/bundle.ts): one script, no
 * top-level await. A checkout runs bin/outpost.js, which imports the same `main`.
 */
import { main } from './headless.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
