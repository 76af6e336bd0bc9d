#!/usr/bin/env node
// `outpost-release`: signing keys and publishing releases into a feed, compiled from tools/release/.
import { main } from '../dist/tools/release/main.js';

process.exitCode = await main(process.argv.slice(2));
