#!/usr/bin/env node
'use strict';
// Measures the gas of deploying RootAnchor, registering a log and anchoring
// checkpoints, on a local anvil, through the same code as the scripts
// (lib/deploy.js, lib/anchoring.js). Gas is deterministic for a given
// contract and call, so one run is the measurement.
//   node bench/anchor_gas.js [--anchors N]
const { ethers } = require('ethers');
const { parseCli, runMain } = require('../lib/cli');
const { startAnvil, DEV_KEYS } = require('../test/helpers/anvil');
const { FakeLog } = require('../test/helpers/fake_log');
const { connect, logIdOf } = require('../lib/chain');
const { parseVerifierKey } = require('../lib/note');
const { deployRootAnchor, registerAnchorer } = require('../lib/deploy');
const { anchorLatest } = require('../lib/anchoring');

const HELP = `usage: anchor_gas.js [--anchors N]

Starts anvil, deploys RootAnchor, registers one log and anchors N (default 20)
successive checkpoints of a growing log; prints the gas of each step.`;

runMain(async () => {
  const args = parseCli(HELP, { anchors: { type: 'string' } });
  const n = Number(args.anchors || 20);
  const chain = await startAnvil();
  try {
    const conn = await connect(chain.url);
    const wallet = new ethers.Wallet(DEV_KEYS[0], conn.provider);
    const origin = 'gas.example/log';
    const d = await deployRootAnchor(conn, wallet);
    const r = await registerAnchorer(conn, wallet, d.address, logIdOf(origin), wallet.address);
    const log = new FakeLog(origin);
    const verifier = parseVerifierKey(log.signer.verifierKey);
    const gas = [];
    for (let i = 0; i < n; i++) {
      log.append(1 + i * 37);  // sizes 1, 39, 114, ...
      const a = await anchorLatest({ log, verifier, conn, wallet, contractAddress: d.address });
      gas.push({ size: a.treeSize, gas: Number(a.gasUsed) });
    }
    const later = gas.slice(1).map((g) => g.gas);
    const mean = later.reduce((x, y) => x + y, 0) / Math.max(1, later.length);
    console.log(`anvil ${chain.url}, RootAnchor ${d.address}`);
    console.log(`| step | gas |`);
    console.log(`|---|---|`);
    console.log(`| deploy RootAnchor | ${d.gasUsed} |`);
    console.log(`| register(logId, anchorer) | ${r.gasUsed} |`);
    console.log(`| first anchor (size ${gas[0].size}) | ${gas[0].gas} |`);
    if (later.length > 0) {
      console.log(`| later anchors (${later.length}, sizes ${gas[1].size}..${gas[gas.length - 1].size}) | min ${Math.min(...later)}, mean ${mean.toFixed(0)}, max ${Math.max(...later)} |`);
    }
  } finally {
    await chain.stop();
  }
});
