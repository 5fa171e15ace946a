'use strict';
// Anchoring on a real local chain (anvil): deploy, anchor, verify, and the
// rejections (tampered root, wrong log id, unanchored checkpoint, another
// address, a second anchoring of one size, a chain that goes away).
const test = require('node:test');
const assert = require('node:assert/strict');
const { ethers } = require('ethers');
const { startAnvil, DEV_KEYS } = require('./helpers/anvil');
const { FakeLog, makeNoteSigner, checkpointText } = require('./helpers/fake_log');
const { connect, logIdOf, rootAnchorAt } = require('../lib/chain');
const { parseVerifierKey } = require('../lib/note');
const { deployRootAnchor, registerAnchorer } = require('../lib/deploy');
const { anchorLatest } = require('../lib/anchoring');
const { verifyAnchored } = require('../lib/verify');

const ORIGIN = 'anchor-test.example/log';

async function setup(t) {
  const chain = await startAnvil();
  t.after(() => chain.stop());
  const conn = await connect(chain.url);
  const owner = new ethers.Wallet(DEV_KEYS[0], conn.provider);
  const other = new ethers.Wallet(DEV_KEYS[1], conn.provider);
  const deployed = await deployRootAnchor(conn, owner);
  const logId = logIdOf(ORIGIN);
  await registerAnchorer(conn, owner, deployed.address, logId, owner.address);
  const log = new FakeLog(ORIGIN);
  const verifier = parseVerifierKey(log.signer.verifierKey);
  return { chain, conn, owner, other, contractAddress: deployed.address, logId, log, verifier };
}

test('deploys, anchors, verifies, grows, and is idempotent', async (t) => {
  const s = await setup(t);
  s.log.append(5);
  const first = await anchorLatest({ log: s.log, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress });
  assert.equal(first.status, 'anchored');
  assert.equal(first.treeSize, 5n);
  assert.equal(first.root, '0x' + s.log.rootAt(5).toString('hex'));
  assert.equal(first.logId, '0x' + require('node:crypto').createHash('sha256').update(ORIGIN).digest('hex'));
  assert.deepEqual(s.log.consistencyCalls, [], 'nothing anchored before: no consistency proof needed');

  // The contract, read directly, holds the root.
  const c = rootAnchorAt(s.conn, s.contractAddress);
  assert.equal(await c.rootOf(s.logId, 5), first.root);
  assert.deepEqual([...(await c.latest(s.logId))], [5n, first.root]);
  const receipt = await s.conn.provider.getTransactionReceipt(first.txHash);
  assert.equal(receipt.blockNumber, first.blockNumber);

  // RecordAnchor got what a bundle needs.
  assert.equal(s.log.recorded.length, 1);
  const rec = s.log.recorded[0];
  assert.equal(rec.logSize, 5n);
  assert.deepEqual(rec.root, s.log.rootAt(5));
  assert.equal(rec.chainId, 31337n);
  assert.equal(rec.contractAddress, s.contractAddress.toLowerCase());
  assert.equal(rec.txHash, first.txHash);
  assert.equal(rec.blockNumber, first.blockNumber);

  const v = await verifyAnchored({ conn: s.conn, contractAddress: s.contractAddress, verifier: s.verifier, note: s.log.checkpointAt(5) });
  assert.equal(v.chainRoot, first.root);
  assert.equal(v.txHash, first.txHash);
  assert.equal(v.blockNumber, first.blockNumber);
  assert.equal(v.confirmations, 1);
  assert.equal(v.blockTime, (await s.conn.provider.getBlock(first.blockNumber)).timestamp);

  // Same checkpoint again: no new transaction.
  const head = await s.conn.provider.getBlockNumber();
  const again = await anchorLatest({ log: s.log, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress });
  assert.equal(again.status, 'already-anchored');
  assert.equal(again.txHash, first.txHash);
  assert.equal(first.recorded, 'recorded');
  assert.equal(again.recorded, 'already-recorded');
  assert.equal(s.log.recorded.length, 1);
  assert.equal(await s.conn.provider.getBlockNumber(), head);

  // The log grows: the consistency proof 5 -> 9 is fetched and checked.
  s.log.append(4);
  const second = await anchorLatest({ log: s.log, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress });
  assert.equal(second.status, 'anchored');
  assert.equal(second.treeSize, 9n);
  assert.deepEqual(s.log.consistencyCalls, [[5, 9]]);
  assert.deepEqual([...(await c.latest(s.logId))], [9n, '0x' + s.log.rootAt(9).toString('hex')]);
  const v5 = await verifyAnchored({ conn: s.conn, contractAddress: s.contractAddress, verifier: s.verifier, note: s.log.checkpointAt(5) });
  assert.equal(v5.confirmations, 2);
});

test('rejects a forked log whose new checkpoint does not extend the anchored one', async (t) => {
  const s = await setup(t);
  s.log.append(6);
  await anchorLatest({ log: s.log, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress });
  // Same key, same origin, but leaf 2 rewritten: a different history.
  s.log.append(3);
  s.log.leaves[2] = Buffer.alloc(32, 0xee);
  const head = await s.conn.provider.getBlockNumber();
  await assert.rejects(
    anchorLatest({ log: s.log, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress }),
    /size 9 is not consistent with the anchored size 6/);
  assert.equal(await s.conn.provider.getBlockNumber(), head, 'nothing sent');
});

test('rejects a checkpoint with a bad signature, and verify rejects a tampered root', async (t) => {
  const s = await setup(t);
  s.log.append(3);
  const forged = { ...s.log, latestLogCheckpoint: async () => s.log.checkpointAt(3).replace(/\n3\n/, '\n4\n') };
  await assert.rejects(
    anchorLatest({ log: forged, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress }),
    /log checkpoint rejected: signature by key .* does not verify/);
  await anchorLatest({ log: s.log, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress });
  // A validly signed checkpoint at the anchored size with another root.
  const tampered = s.log.signer.sign(checkpointText(ORIGIN, 3, Buffer.alloc(32, 0x42)));
  await assert.rejects(
    verifyAnchored({ conn: s.conn, contractAddress: s.contractAddress, verifier: s.verifier, note: tampered }),
    /ROOT MISMATCH/);
  // An anchor script holding that checkpoint refuses to go on.
  await assert.rejects(
    anchorLatest({ log: { ...s.log, latestLogCheckpoint: async () => tampered }, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress }),
    /DIFFERENT root/);
});

test('verify rejects an unanchored checkpoint and one of another log id', async (t) => {
  const s = await setup(t);
  s.log.append(4);
  await anchorLatest({ log: s.log, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress });
  s.log.append(3);
  await assert.rejects(
    verifyAnchored({ conn: s.conn, contractAddress: s.contractAddress, verifier: s.verifier, note: s.log.checkpointAt(7) }),
    /NOT ANCHORED: .* size 7/);
  const otherOrigin = s.log.signer.sign(checkpointText('another.example/log', 4, s.log.rootAt(4)));
  await assert.rejects(
    verifyAnchored({ conn: s.conn, contractAddress: s.contractAddress, verifier: s.verifier, note: otherOrigin }),
    /NOT ANCHORED: another\.example\/log size 4/);
  // ... and that log is not registered, so it cannot be anchored either.
  const other = new FakeLog('another.example/log', s.log.signer);
  other.append(4);
  await assert.rejects(
    anchorLatest({ log: other, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress }),
    /may not anchor another\.example\/log .*not registered/);
});

test('the contract rejects another address, a second anchoring of a size, older sizes and empty checkpoints', async (t) => {
  const s = await setup(t);
  s.log.append(2);
  await assert.rejects(
    anchorLatest({ log: s.log, verifier: s.verifier, conn: s.conn, wallet: s.other, contractAddress: s.contractAddress }),
    new RegExp(`${s.other.address} may not anchor .*registered anchorer is ${s.owner.address}`));
  const asOwner = rootAnchorAt(s.conn, s.contractAddress, s.owner);
  const asOther = rootAnchorAt(s.conn, s.contractAddress, s.other);
  const root = (b) => '0x' + Buffer.alloc(32, b).toString('hex');
  // Straight to the contract, bypassing the script's checks.
  await assert.rejects(asOther.anchor.staticCall(s.logId, 10, root(1)), (e) => e.revert && e.revert.name === 'NotAnchorer');
  await assert.rejects(asOther.register.staticCall(s.logId, s.other.address), (e) => e.revert && e.revert.name === 'NotOwner');
  await (await asOwner.anchor(s.logId, 10, root(1))).wait();
  await assert.rejects(asOwner.anchor.staticCall(s.logId, 10, root(1)), (e) => e.revert && e.revert.name === 'AlreadyAnchored');
  await assert.rejects(asOwner.anchor.staticCall(s.logId, 10, root(2)), (e) => e.revert && e.revert.name === 'AlreadyAnchored');
  await assert.rejects(asOwner.anchor.staticCall(s.logId, 9, root(2)), (e) => e.revert && e.revert.name === 'StaleTreeSize');
  await assert.rejects(asOwner.anchor.staticCall(s.logId, 0, root(2)), (e) => e.revert && e.revert.name === 'EmptyCheckpoint');
  await assert.rejects(asOwner.anchor.staticCall(s.logId, 11, root(0)), (e) => e.revert && e.revert.name === 'EmptyCheckpoint');
  assert.equal(await asOwner.rootOf(s.logId, 10), root(1));
  // Rotation: the owner moves the log to another address, which may then anchor.
  await registerAnchorer(s.conn, s.owner, s.contractAddress, s.logId, s.other.address);
  await assert.rejects(asOwner.anchor.staticCall(s.logId, 12, root(3)), (e) => e.revert && e.revert.name === 'NotAnchorer');
  await (await asOther.anchor(s.logId, 12, root(3))).wait();
  assert.equal(await asOwner.rootOf(s.logId, 12), root(3));
});

test('a chain that goes away mid-run gives a clear error', async (t) => {
  const s = await setup(t);
  s.log.append(3);
  const dying = {
    ...s.log,
    latestLogCheckpoint: async () => {
      await s.chain.stop();
      return s.log.checkpointAt(3);
    },
  };
  const started = Date.now();
  await assert.rejects(
    anchorLatest({ log: dying, verifier: s.verifier, conn: s.conn, wallet: s.owner, contractAddress: s.contractAddress }),
    (e) => /chain RPC http:\/\/127\.0\.0\.1:\d+ (went away|is unreachable)/.test(e.message));
  assert.ok(Date.now() - started < 15000, 'fails fast, no endless retry');
  await assert.rejects(connect(s.chain.url), /is unreachable \(ECONNREFUSED\)/);
});
