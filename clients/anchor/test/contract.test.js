'use strict';
// The committed artifact is what the pinned solc-js makes of the source, so
// deploy.js (and the C++ test) deploy exactly contracts/RootAnchor.sol.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { compileRootAnchor, artifactJson, ARTIFACT_PATH } = require('../lib/compile');
const pkg = require('../package.json');

test('committed artifacts/RootAnchor.json matches a fresh compile of RootAnchor.sol', () => {
  const fresh = compileRootAnchor();
  assert.equal(fs.readFileSync(ARTIFACT_PATH, 'utf8'), artifactJson(fresh), 'run bin/compile.js and commit the artifact');
  assert.match(fresh.compiler, new RegExp(`^solc-js ${pkg.dependencies.solc.replace(/\./g, '\\.')}\\+commit`));
  const names = fresh.abi.filter((x) => x.type === 'function').map((x) => x.name).sort();
  assert.deepEqual(names, ['anchor', 'anchorerOf', 'latest', 'owner', 'register', 'rootOf']);
});
