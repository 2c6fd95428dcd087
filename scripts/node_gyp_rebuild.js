#!/usr/bin/env node
// `npm install` / `npm run build`: node-gyp rebuild, against the headers of
// the node that runs it when they are installed beside it (Debian's nodejs
// package and the official tarballs put them in PREFIX/include/node). Without
// --nodedir node-gyp downloads the headers, which fails on a machine without
// internet even though everything the build needs is on disk. A nodedir the
// user configured (npm_config_nodedir) wins.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const args = ['rebuild'];
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
// npm names its own node-gyp to the scripts it runs; outside npm (install.sh)
// the one bundled with npm beside this node.
const bundled = path.join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
const gyp = process.env.npm_config_node_gyp || (fs.existsSync(bundled) ? bundled : null);
const r = gyp ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' }) : spawnSync('node-gyp', args, { stdio: 'inherit' });
if (r.error) {
  process.stderr.write(`cannot run node-gyp (${r.error.code ?? r.error.message}): run this through npm (npm install / npm run build)\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
