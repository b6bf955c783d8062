#!/usr/bin/env node
// `lwm2m-sim`: a fleet of simulated LwM2M devices (see lib/client/cli.ts, or run with --help).
'use strict';
let cli;
try {
  cli = require('../dist/lib/client/cli.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && /dist[\\/]lib[\\/]client[\\/]cli/.test(err.message)) {
    console.error('lwm2m-sim: the package is not built yet; run `npm run build` first');
    process.exit(1);
  }
  throw err;
}
cli.run(process.argv.slice(2));
