#!/usr/bin/env node
// `outpost-updater` as a script (tests, development); releases ship it as a single executable.
import '../dist/updater/cli.js';
