#!/usr/bin/env node
'use strict';
const fs = require('node:fs');
const { ethers } = require('ethers');
const { parseCli, requireOption, runMain, UsageError, contractFromArgs } = require('../lib/cli');
const { connect } = require('../lib/chain');
const { parseVerifierKey } = require('../lib/note');
const { verifyAnchored, logCheckpointOfBundle } = require('../lib/verify');

const HELP = `usage: verify-anchor.js (--checkpoint FILE | --bundle FILE) --key VKEY --rpc URL
                        [--contract ADDR | --deployment FILE] [--min-confirmations N]
                        [--from-block N] [--json]

Checks that a signed log checkpoint (or a proof bundle's log checkpoint) is
anchored on a chain: its signature verifies with the verifier key, and
RootAnchor.rootOf(SHA-256(origin), size) equals its root. Prints the anchoring
transaction, block, block time and confirmations.

  --checkpoint FILE      a signed log checkpoint note
  --bundle FILE          a stepproof.bundle/v1 JSON file (its log.checkpoint)
  --key VKEY             the log's C2SP verifier key (name+id+key), or @FILE
  --rpc URL              chain JSON-RPC endpoint (http:// or https://)
  --contract ADDR        the RootAnchor contract you trust; with --bundle it
                         defaults to the bundle's anchor.contract_address
  --deployment FILE      deploy.js --out file: its contract, and its deployment
                         block as the default --from-block
  --min-confirmations N  fail unless the anchor has N confirmations (default 1)
  --from-block N         first block to search for the anchor event
                         (default: the deployment block, or 0)
  --json                 print the result as JSON
  --help                 this text

Exit status: 0 anchored, 1 not anchored / root mismatch / any error, 2 bad usage.`;

function readFile(file, what) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} ${file}: ${e.message}`);
  }
}

runMain(async () => {
  const args = parseCli(HELP, {
    checkpoint: { type: 'string' }, bundle: { type: 'string' }, key: { type: 'string' }, rpc: { type: 'string' },
    contract: { type: 'string' }, deployment: { type: 'string' }, 'min-confirmations': { type: 'string' }, 'from-block': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (!!args.checkpoint === !!args.bundle) throw new UsageError('give exactly one of --checkpoint FILE or --bundle FILE');
  const vkey = requireOption(args, 'key');
  const verifier = parseVerifierKey(vkey.startsWith('@') ? readFile(vkey.slice(1), 'verifier key').trim() : vkey);
  const rpc = requireOption(args, 'rpc');
  const minConf = Number(args['min-confirmations'] || 1);
  if (!Number.isInteger(minConf) || minConf < 1) throw new UsageError('--min-confirmations must be a positive integer');

  let note;
  let recorded = null;
  if (args.bundle) {
    ({ note, anchor: recorded } = logCheckpointOfBundle(readFile(args.bundle, 'bundle')));
  } else {
    note = readFile(args.checkpoint, 'checkpoint');
  }
  const chosen = contractFromArgs(args);
  const fromBlock = chosen.fromBlock;
  let contractAddress = chosen.contract;
  if (!contractAddress && recorded && recorded.contract_address) {
    contractAddress = recorded.contract_address;
    console.error(`note: using the contract named by the bundle, ${contractAddress}; pass --contract to use one you trust`);
  }
  if (!contractAddress) throw new UsageError('missing --contract (the bundle names none)');
  if (!ethers.isAddress(contractAddress)) throw new UsageError(`--contract is not an address: "${contractAddress}"`);

  const conn = await connect(rpc);
  if (recorded && recorded.chain_id !== undefined && String(recorded.chain_id) !== conn.chainId.toString()) {
    throw new Error(`the bundle's anchor is on chain ${recorded.chain_id} but ${rpc} is chain ${conn.chainId}`);
  }
  const r = await verifyAnchored({ conn, contractAddress, verifier, note, fromBlock });
  const problems = [];
  if (r.confirmations !== null && r.confirmations < minConf) problems.push(`only ${r.confirmations} confirmations, need ${minConf}`);
  if (r.txHash === null) problems.push(`root is anchored but its RootAnchored event was not found from block ${fromBlock}`);
  if (recorded && recorded.tx_hash && r.txHash && recorded.tx_hash.toLowerCase() !== r.txHash.toLowerCase()) {
    problems.push(`the bundle names transaction ${recorded.tx_hash} but the anchor is in ${r.txHash}`);
  }
  if (args.json) {
    console.log(JSON.stringify({ ...r, treeSize: r.treeSize.toString(), chainId: conn.chainId.toString(), anchored: problems.length === 0, problems }, null, 2));
  } else {
    console.log(`root equal: ${r.origin} size ${r.treeSize} root ${r.root}`);
    if (r.txHash) {
      console.log(`anchored in tx ${r.txHash} block ${r.blockNumber} at ${new Date(r.blockTime * 1000).toISOString()} ` +
        `(${r.confirmations} confirmations, chain ${conn.chainId})`);
    }
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return 0;
});
