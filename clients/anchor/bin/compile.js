#!/usr/bin/env node
'use strict';
// Compiles RootAnchor.sol with the pinned solc-js and writes (or, with
// --check, compares against) the committed artifacts/RootAnchor.json.
const fs = require('node:fs');
const { runMain, parseCli } = require('../lib/cli');
const { compileRootAnchor, artifactJson, ARTIFACT_PATH } = require('../lib/compile');

const HELP = `usage: compile.js [--check] [--out FILE]

Compiles contracts/RootAnchor.sol offline with the solc-js version pinned in
package.json and writes the ABI and bytecode to artifacts/RootAnchor.json.

  --check      do not write; exit 1 if the committed artifact differs
  --out FILE   write here instead of artifacts/RootAnchor.json
  --help       this text`;

runMain(async () => {
  const args = parseCli(HELP, { check: { type: 'boolean' }, out: { type: 'string' } });
  const out = args.out || ARTIFACT_PATH;
  const fresh = artifactJson(compileRootAnchor());
  if (args.check) {
    const committed = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
    if (committed !== fresh) throw new Error(`${out} is stale: run bin/compile.js`);
    console.log(`${out} matches contracts/RootAnchor.sol`);
    return;
  }
  fs.writeFileSync(out, fresh);
  console.log(`wrote ${out}`);
});
