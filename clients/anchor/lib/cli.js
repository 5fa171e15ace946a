'use strict';
// Shared command-line plumbing: --help, argument errors, exit codes.
const { parseArgs } = require('node:util');

class UsageError extends Error {}

// Parses process.argv with node:util parseArgs (strict). Prints `help` and
// exits 0 on --help; throws UsageError on unknown or malformed options.
function parseCli(help, options, argv = process.argv.slice(2)) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${e.message} (see --help)`);
  }
  if (parsed.values.help) {
    console.log(help);
    process.exit(0);
  }
  return { ...parsed.values, _: parsed.positionals };
}

function requireOption(args, name) {
  const v = args[name];
  if (v === undefined || v === '') throw new UsageError(`missing required option --${name} (see --help)`);
  return v;
}

// Runs an async main; any error prints "error: <message>" to stderr and exits
// 2 for usage errors, 1 otherwise.
function runMain(main) {
  main().then(
    (code) => process.exit(typeof code === 'number' ? code : 0),
    (e) => {
      console.error(`error: ${e && e.message ? e.message : String(e)}`);
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
}

// The contract and the first block to search for its events: --contract ADDR
// and --from-block N, or --deployment FILE (deploy.js --out), whose
// `contract` and `deployBlock` are the defaults for both.
function contractFromArgs(args) {
  let contract = args.contract;
  let fromBlock = 0;
  if (args.deployment) {
    let d;
    try {
      d = JSON.parse(require('node:fs').readFileSync(args.deployment, 'utf8'));
    } catch (e) {
      throw new UsageError(`cannot read --deployment ${args.deployment}: ${e.message}`);
    }
    if (typeof d.contract !== 'string') throw new UsageError(`--deployment ${args.deployment} names no contract`);
    if (contract && contract.toLowerCase() !== d.contract.toLowerCase()) {
      throw new UsageError(`--contract ${contract} differs from the contract in ${args.deployment} (${d.contract})`);
    }
    contract = d.contract;
    if (Number.isInteger(d.deployBlock)) fromBlock = d.deployBlock;
  }
  if (args['from-block'] !== undefined) {
    fromBlock = Number(args['from-block']);
    if (!/^\d+$/.test(args['from-block'])) throw new UsageError('--from-block must be a block number');
  }
  return { contract, fromBlock };
}

module.exports = { parseCli, requireOption, runMain, UsageError, contractFromArgs };
