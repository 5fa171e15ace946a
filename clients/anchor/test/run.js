#!/usr/bin/env node
'use strict';
// ctest entry for the JS tests: runs `node --test` over test/*.test.js. Exits
// 77 (ctest SKIP_RETURN_CODE) with the reason when clients/anchor/node_modules
// is not installed (scripts/install-deps.sh runs `npm ci`); never skips for
// any other reason. Uses no dependency itself.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const SKIP = 77;

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const arch = process.arch === 'x64' ? 'amd64' : process.arch;
const needed = [...Object.keys(pkg.dependencies), `@foundry-rs/anvil-${process.platform}-${arch}`];
const missing = needed.filter((name) => !fs.existsSync(path.join(ROOT, 'node_modules', name, 'package.json')));
if (missing.length > 0) {
  console.log(`SKIPPED: clients/anchor/node_modules lacks ${missing.join(', ')}: ` +
    'npm ci could not install them (no npm registry, or scripts/install-deps.sh not run)');
  process.exit(SKIP);
}

const files = fs.readdirSync(__dirname).filter((f) => f.endsWith('.test.js')).sort().map((f) => path.join(__dirname, f));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { cwd: ROOT, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
