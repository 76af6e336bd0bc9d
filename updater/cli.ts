import { main } from './main.js';

// The updater's entry point: bin/outpost-updater.js runs it as a script (development, tests), and the
// single executables embed it bundled into one CommonJS file (no top-level await there).
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`outpost-updater: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 70;
  },
);
