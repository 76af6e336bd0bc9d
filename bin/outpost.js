#!/usr/bin/env node
// The `outpost` command: runs the bundled headless shell (dist/app/main/outpost.js, made by `npm run
// build`, which npm ci runs through `prepare`). Node's compile cache keeps V8's compiled code between
// starts, in the system's temp folder (a cache: losing it costs only time).
import module from 'node:module';

module.enableCompileCache?.();
await import('../dist/app/main/outpost.js');
