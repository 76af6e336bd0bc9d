#!/usr/bin/env node
// `outpost-updater` as a script (tests, development); releases ship it as a single executable.
import { main } from '../dist/updater/main.js';

process.exitCode = await main(process.argv.slice(2));
