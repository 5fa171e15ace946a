'use strict';
// Is a signed log checkpoint anchored? Reads RootAnchor.rootOf for
// (SHA-256(origin), size), compares it with the checkpoint's root, and finds
// the RootAnchored event for its transaction, block time and confirmations.

const { openCheckpoint } = require('./note');
const { logIdOf, hex32, onChain, rootAnchorAt, findAnchorEvent } = require('./chain');

const ZERO32 = '0x' + '00'.repeat(32);

// Extracts the signed log checkpoint and the recorded anchor (if any) from a
// stepproof.bundle/v1 JSON text.
function logCheckpointOfBundle(jsonText) {
  let b;
  try {
    b = JSON.parse(jsonText);
  } catch (e) {
    throw new Error(`bundle is not JSON: ${e.message}`);
  }
  if (!b || typeof b !== 'object') throw new Error('bundle is not a JSON object');
  const log = b.log;
  if (!log || typeof log !== 'object' || typeof log.checkpoint !== 'string' || log.checkpoint === '') {
    throw new Error('bundle has no log checkpoint (log.checkpoint): the trace is not in the log yet');
  }
  const anchor = b.anchor && typeof b.anchor === 'object' ? b.anchor : null;
  return { note: log.checkpoint, anchor };
}

// Returns { origin, logId, treeSize, root, chainRoot, txHash, blockNumber,
// blockTime, confirmations }. Throws Error when the signature does not
// verify, the checkpoint is not anchored, or a different root is.
async function verifyAnchored({ conn, contractAddress, verifier, note, fromBlock = 0 }) {
  let cp;
  try {
    cp = openCheckpoint(note, verifier);
  } catch (e) {
    throw new Error(`log checkpoint rejected: ${e.message}`);
  }
  const logId = logIdOf(cp.origin);
  const root = hex32(cp.root);
  const contract = rootAnchorAt(conn, contractAddress);
  const code = await onChain(conn, 'reading the contract code', () => conn.provider.getCode(contract.target));
  if (code === '0x') throw new Error(`no contract at ${contract.target} on chain ${conn.chainId}`);
  const chainRoot = await onChain(conn, 'reading rootOf', () => contract.rootOf(logId, cp.size));
  if (chainRoot === ZERO32) {
    throw new Error(`NOT ANCHORED: ${cp.origin} size ${cp.size} has no root on ${contract.target} (chain ${conn.chainId})`);
  }
  if (chainRoot.toLowerCase() !== root) {
    throw new Error(`ROOT MISMATCH: ${cp.origin} size ${cp.size}: chain has ${chainRoot}, checkpoint has ${root}`);
  }
  const ev = await findAnchorEvent(conn, contract, logId, cp.size, fromBlock);
  const head = await onChain(conn, 'reading the block number', () => conn.provider.getBlockNumber());
  const result = { origin: cp.origin, logId, treeSize: cp.size, root, chainRoot, txHash: null, blockNumber: null, blockTime: null, confirmations: null };
  if (ev) {
    const block = await onChain(conn, 'reading the block', () => conn.provider.getBlock(ev.blockNumber));
    Object.assign(result, {
      txHash: ev.transactionHash, blockNumber: ev.blockNumber, blockTime: block ? block.timestamp : null,
      confirmations: head - ev.blockNumber + 1,
    });
  }
  return result;
}

module.exports = { verifyAnchored, logCheckpointOfBundle };
