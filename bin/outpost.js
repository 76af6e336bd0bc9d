#!/usr/bin/env node
// The `outpost` command: runs the compiled headless shell (npm ci builds it through `prepare`).
import { main } from '../dist/app/main/headless.js';

process.exitCode = await main(process.argv.slice(2));
