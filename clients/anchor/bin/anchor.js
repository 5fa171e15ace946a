#!/usr/bin/env node
'use strict';
const fs = require('node:fs');
const { ethers } = require('ethers');
const { parseCli, requireOption, runMain, UsageError, contractFromArgs } = require('../lib/cli');
const { connect, loadPrivateKey } = require('../lib/chain');
const { parseVerifierKey } = require('../lib/note');
const { StepProofClient } = require('../lib/stepproofd');
const { anchorLatest } = require('../lib/anchoring');

const HELP = `usage: anchor.js --server HOST:PORT --key VKEY --rpc URL (--contract ADDR | --deployment FILE)
                 [--key-file FILE] [--token-file FILE] [--proto-dir DIR] [--tls]
                 [--confirmations N] [--from-block N] [--no-record] [--json]

Anchors the latest signed log checkpoint of a stepproofd on a chain:
  1. fetches it over gRPC (GetLogCheckpoint) and verifies its signature
     with the verifier key;
  2. reads the last anchored checkpoint of the log (RootAnchor.latest) and
     verifies the RFC 9162 consistency proof between the two
     (GetLogConsistency);
  3. sends RootAnchor.anchor(SHA-256(origin), size, root) and waits for it;
  4. records the anchor in stepproofd (RecordAnchor), so that later proof
     bundles carry it.
Idempotent: a checkpoint already anchored with the same root is not sent
again; its existing transaction is reported (and recorded again).

  --server HOST:PORT   stepproofd gRPC address
  --key VKEY           the log's C2SP verifier key (name+id+key), or @FILE
  --rpc URL            chain JSON-RPC endpoint (http:// or https://)
  --contract ADDR      the RootAnchor contract
  --deployment FILE    deploy.js --out file: its contract, and its deployment
                       block as the default --from-block
  --key-file FILE      0x-hex private key of the registered anchorer;
                       default: env STEPPROOF_ANCHOR_PRIVATE_KEY
  --token-file FILE    stepproofd API token (default: env STEPPROOF_API_TOKEN)
  --proto-dir DIR      where stepproof/v1/*.proto live (default: the repo's proto/)
  --tls                connect to stepproofd over TLS
  --confirmations N    blocks to wait for (default 1)
  --from-block N       first block to search for earlier anchor events
                       (default: the deployment block, or 0)
  --no-record          do not call RecordAnchor
  --json               print the result as JSON
  --help               this text

Prints the transaction hash and block. Exits 1 on any failure (2 on bad usage).`;

function readMaybeFile(v) {
  return v.startsWith('@') ? fs.readFileSync(v.slice(1), 'utf8').trim() : v;
}

runMain(async () => {
  const args = parseCli(HELP, {
    server: { type: 'string' }, key: { type: 'string' }, rpc: { type: 'string' }, contract: { type: 'string' },
    deployment: { type: 'string' },
    'key-file': { type: 'string' }, 'token-file': { type: 'string' }, 'proto-dir': { type: 'string' },
    tls: { type: 'boolean' }, confirmations: { type: 'string' }, 'from-block': { type: 'string' },
    'no-record': { type: 'boolean' }, json: { type: 'boolean' },
  });
  const server = requireOption(args, 'server');
  const verifier = parseVerifierKey(readMaybeFile(requireOption(args, 'key')));
  const rpc = requireOption(args, 'rpc');
  const { contract: contractAddress, fromBlock } = contractFromArgs(args);
  if (!contractAddress) throw new UsageError('missing required option --contract or --deployment (see --help)');
  if (!ethers.isAddress(contractAddress)) throw new UsageError(`--contract is not an address: "${contractAddress}"`);
  const confirmations = Number(args.confirmations || 1);
  if (!Number.isInteger(confirmations) || confirmations < 1) throw new UsageError('--confirmations must be a positive integer');
  const token = args['token-file'] ? fs.readFileSync(args['token-file'], 'utf8').trim() : (process.env.STEPPROOF_API_TOKEN || '');

  const conn = await connect(rpc);
  const wallet = new ethers.Wallet(loadPrivateKey(args['key-file']), conn.provider);
  const log = new StepProofClient(server, { token, tls: !!args.tls, protoDir: args['proto-dir'] });
  try {
    const r = await anchorLatest({ log, verifier, conn, wallet, contractAddress, confirmations, fromBlock, record: !args['no-record'] });
    if (args.json) {
      console.log(JSON.stringify({ ...r, treeSize: r.treeSize.toString(), gasUsed: r.gasUsed.toString(), chainId: conn.chainId.toString() }, null, 2));
    } else {
      const what = r.status === 'anchored' ? 'anchored' : 'already anchored';
      console.log(`${what} ${r.origin} size ${r.treeSize} root ${r.root}`);
      console.log(`tx ${r.txHash} block ${r.blockNumber} (chain ${conn.chainId})${r.status === 'anchored' ? ` gas ${r.gasUsed}` : ''}`);
      console.log({ recorded: 'recorded in stepproofd', 'already-recorded': 'stepproofd had recorded it already' }[r.recorded] ||
        'not recorded in stepproofd (--no-record)');
    }
  } finally {
    log.close();
  }
  return 0;
});
