'use strict';
// Anchoring one signed log checkpoint: verify its signature, verify that it
// extends the last anchored checkpoint, anchor it, record the anchor in the
// log. Idempotent: a checkpoint already anchored with the same root is not
// sent again (its existing transaction is reported and recorded).
//
// `log` is anything with latestLogCheckpoint(), logConsistency(size1, size2)
// and, optionally, recordAnchor({...}) (lib/stepproofd.js, or a fake in tests).

const { openCheckpoint } = require('./note');
const { verifyConsistency } = require('./merkle');
const { logIdOf, hex32, onChain, rootAnchorAt, waitForReceipt, findAnchorEvent } = require('./chain');

const ZERO32 = '0x' + '00'.repeat(32);

// Returns { status: 'anchored' | 'already-anchored', origin, logId, treeSize,
// root, txHash, blockNumber, blockTime, gasUsed, recorded: false |
// 'recorded' | 'already-recorded' }. `log.recordAnchor` returns null when the
// log had recorded this transaction before. Throws Error
// naming the problem: bad signature, log older than the chain, inconsistent
// history, a different root already anchored at this size, wallet not the
// registered anchorer, chain or server unreachable.
async function anchorLatest({ log, verifier, conn, wallet, contractAddress, confirmations = 1, fromBlock = 0, record = true }) {
  const note = await log.latestLogCheckpoint();
  let cp;
  try {
    cp = openCheckpoint(note, verifier);
  } catch (e) {
    throw new Error(`log checkpoint rejected: ${e.message}`);
  }
  if (cp.size === 0n) throw new Error('the log is empty: nothing to anchor');
  if (cp.size > 0xffffffffffffffffn) throw new Error('log size does not fit in uint64');
  const logId = logIdOf(cp.origin);
  const root = hex32(cp.root);
  const contract = rootAnchorAt(conn, contractAddress, wallet);
  const base = { origin: cp.origin, logId, treeSize: cp.size, root };

  const code = await onChain(conn, 'reading the contract code', () => conn.provider.getCode(contractAddress));
  if (code === '0x') throw new Error(`no contract at ${contractAddress} on chain ${conn.chainId}`);

  let result;
  const existing = await onChain(conn, 'reading rootOf', () => contract.rootOf(logId, cp.size));
  if (existing !== ZERO32) {
    if (existing.toLowerCase() !== root.toLowerCase()) {
      throw new Error(`the chain already holds a DIFFERENT root for ${cp.origin} at size ${cp.size}: ` +
        `chain ${existing}, log ${root} (the log has equivocated, or the contract is not this log's)`);
    }
    const ev = await findAnchorEvent(conn, contract, logId, cp.size, fromBlock);
    if (!ev) throw new Error(`root is anchored but its RootAnchored event was not found from block ${fromBlock}`);
    const receipt = await waitForReceipt(conn, ev.transactionHash, { confirmations });
    result = { ...base, status: 'already-anchored', txHash: ev.transactionHash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed };
  } else {
    const anchorer = await onChain(conn, 'reading anchorerOf', () => contract.anchorerOf(logId));
    if (anchorer.toLowerCase() !== wallet.address.toLowerCase()) {
      throw new Error(`${wallet.address} may not anchor ${cp.origin} (log id ${logId}): ` +
        (/^0x0{40}$/.test(anchorer) ? 'the log is not registered (deploy.js --origin)' : `its registered anchorer is ${anchorer}`));
    }
    const [lastSize, lastRoot] = await onChain(conn, 'reading latest', () => contract.latest(logId));
    if (lastSize > cp.size) {
      throw new Error(`the log's latest checkpoint (size ${cp.size}) is older than the anchored size ${lastSize}`);
    }
    if (lastSize > 0n) {
      const proof = await log.logConsistency(lastSize, cp.size);
      try {
        verifyConsistency(lastSize, cp.size, Buffer.from(lastRoot.slice(2), 'hex'), cp.root, proof);
      } catch (e) {
        throw new Error(`checkpoint at size ${cp.size} is not consistent with the anchored size ${lastSize}: ${e.message}`);
      }
    }
    const tx = await onChain(conn, 'sending anchor()', () => contract.anchor(logId, cp.size, root));
    const receipt = await waitForReceipt(conn, tx.hash, { confirmations });
    if (receipt.status !== 1) throw new Error(`anchor transaction ${tx.hash} reverted`);
    result = { ...base, status: 'anchored', txHash: tx.hash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed };
  }
  const block = await onChain(conn, 'reading the block', () => conn.provider.getBlock(result.blockNumber));
  result.blockTime = block ? block.timestamp : 0;
  result.recorded = false;  // false | 'recorded' | 'already-recorded'
  if (record && log.recordAnchor) {
    const anchored = await log.recordAnchor({
      logSize: cp.size, root: cp.root, chainId: conn.chainId, contractAddress: contract.target.toLowerCase(),
      txHash: result.txHash, blockNumber: result.blockNumber, blockTimeUnixMs: result.blockTime * 1000,
    });
    result.recorded = anchored === null ? 'already-recorded' : 'recorded';
  }
  return result;
}

module.exports = { anchorLatest };
