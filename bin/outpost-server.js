#!/usr/bin/env node
// `outpost-server`: the reference backend (feed, WebSocket push, error reports), compiled from server/.
import { main } from '../dist/server/main.js';

process.exitCode = await main(process.argv.slice(2));
