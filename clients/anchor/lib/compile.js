'use strict';
// Compiles contracts/RootAnchor.sol with the pinned solc-js (the emscripten
// build inside the npm package: no compiler download, no network) and reads
// or writes the committed artifact artifacts/RootAnchor.json.

const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const SOURCE_PATH = path.join(ROOT, 'contracts', 'RootAnchor.sol');
const ARTIFACT_PATH = path.join(ROOT, 'artifacts', 'RootAnchor.json');

// Fixed so that the bytecode is reproducible from the source.
const SETTINGS = Object.freeze({
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'shanghai',
  outputSelection: { '*': { RootAnchor: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
});

// Returns { contractName, compiler, settings, abi, bytecode, deployedBytecode }.
// Throws Error naming the compiler's errors.
function compileRootAnchor() {
  let solc;
  try {
    solc = require('solc');
  } catch (e) {
    throw new Error(`solc-js is not installed (run scripts/install-deps.sh): ${e.message}`);
  }
  const input = {
    language: 'Solidity',
    sources: { 'RootAnchor.sol': { content: fs.readFileSync(SOURCE_PATH, 'utf8') } },
    settings: SETTINGS,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new Error(`RootAnchor.sol does not compile:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  }
  const c = output.contracts['RootAnchor.sol'].RootAnchor;
  return {
    contractName: 'RootAnchor',
    compiler: `solc-js ${solc.version()}`,
    settings: { optimizer: SETTINGS.optimizer, evmVersion: SETTINGS.evmVersion },
    abi: c.abi,
    bytecode: '0x' + c.evm.bytecode.object,
    deployedBytecode: '0x' + c.evm.deployedBytecode.object,
  };
}

function loadArtifact(artifactPath = ARTIFACT_PATH) {
  let text;
  try {
    text = fs.readFileSync(artifactPath, 'utf8');
  } catch (e) {
    throw new Error(`cannot read contract artifact ${artifactPath}: ${e.message}`);
  }
  const a = JSON.parse(text);
  if (!Array.isArray(a.abi) || typeof a.bytecode !== 'string' || !a.bytecode.startsWith('0x')) {
    throw new Error(`${artifactPath}: not a RootAnchor artifact (abi, bytecode)`);
  }
  return a;
}

function artifactJson(artifact) {
  return JSON.stringify(artifact, null, 2) + '\n';
}

module.exports = { compileRootAnchor, loadArtifact, artifactJson, SOURCE_PATH, ARTIFACT_PATH };
