#!/usr/bin/env node
'use strict';
const fs = require('node:fs');
const { ethers } = require('ethers');
const { parseCli, requireOption, runMain, UsageError } = require('../lib/cli');
const { connect, loadPrivateKey, logIdOf } = require('../lib/chain');
const { deployRootAnchor, registerAnchorer } = require('../lib/deploy');

const HELP = `usage: deploy.js --rpc URL [--key-file FILE] [--origin ORIGIN | --log-id 0xHEX]
                 [--anchorer ADDR] [--contract ADDR] [--out FILE] [--confirmations N]

Deploys the RootAnchor contract (the signing address becomes its owner) and,
with --origin or --log-id, registers the address allowed to anchor that log
(the signing address unless --anchorer is given). With --contract, deploys
nothing and only registers on that existing contract.

  --rpc URL            JSON-RPC endpoint of the chain (http:// or https://)
  --key-file FILE      file holding the 0x-hex private key; default: the
                       STEPPROOF_ANCHOR_PRIVATE_KEY environment variable
  --origin ORIGIN      log origin string; log id = SHA-256(origin)
  --log-id 0xHEX       the log id itself (32 bytes of hex)
  --anchorer ADDR      address allowed to anchor the log (default: signer)
  --contract ADDR      register on this deployed RootAnchor instead of deploying
  --out FILE           also write the result as JSON to FILE
  --confirmations N    blocks to wait for each transaction (default 1)
  --help               this text

Prints the contract address, deployment transaction, block and gas used.
Exits 1 on any failure (2 on bad usage).`;

runMain(async () => {
  const args = parseCli(HELP, {
    rpc: { type: 'string' }, 'key-file': { type: 'string' }, origin: { type: 'string' },
    'log-id': { type: 'string' }, anchorer: { type: 'string' }, contract: { type: 'string' },
    out: { type: 'string' }, confirmations: { type: 'string' },
  });
  const rpc = requireOption(args, 'rpc');
  if (args.origin && args['log-id']) throw new UsageError('give --origin or --log-id, not both');
  if (args['log-id'] && !/^0x[0-9a-fA-F]{64}$/.test(args['log-id'])) throw new UsageError('--log-id must be 0x + 64 hex digits');
  const confirmations = Number(args.confirmations || 1);
  if (!Number.isInteger(confirmations) || confirmations < 1) throw new UsageError('--confirmations must be a positive integer');
  const logId = args.origin !== undefined ? logIdOf(args.origin) : args['log-id'];
  if (args.contract && !logId) throw new UsageError('--contract needs --origin or --log-id (nothing to register)');

  const conn = await connect(rpc);
  const wallet = new ethers.Wallet(loadPrivateKey(args['key-file']), conn.provider);
  const result = { chainId: conn.chainId.toString(), owner: wallet.address };
  if (args.contract) {
    result.contract = ethers.getAddress(args.contract);
  } else {
    const d = await deployRootAnchor(conn, wallet, { confirmations });
    Object.assign(result, { contract: d.address, deployTx: d.txHash, deployBlock: d.blockNumber, deployGas: d.gasUsed.toString() });
    console.log(`deployed RootAnchor at ${d.address} (chain ${conn.chainId}) tx ${d.txHash} block ${d.blockNumber} gas ${d.gasUsed}`);
  }
  if (logId) {
    const anchorer = args.anchorer || wallet.address;
    const r = await registerAnchorer(conn, wallet, result.contract, logId, anchorer, { confirmations });
    Object.assign(result, { logId, anchorer: ethers.getAddress(anchorer) });
    if (r.unchanged) {
      console.log(`log ${logId} already registered to ${anchorer}`);
    } else {
      Object.assign(result, { registerTx: r.txHash, registerBlock: r.blockNumber, registerGas: r.gasUsed.toString() });
      console.log(`registered ${anchorer} for log ${logId} tx ${r.txHash} block ${r.blockNumber} gas ${r.gasUsed}`);
    }
  }
  if (args.out) fs.writeFileSync(args.out, JSON.stringify(result, null, 2) + '\n');
  return 0;
});
