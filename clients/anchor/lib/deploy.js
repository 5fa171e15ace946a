'use strict';
// Deploying RootAnchor and registering a log's anchoring address.

const { ethers } = require('ethers');
const { loadArtifact } = require('./compile');
const { onChain, waitForReceipt, rootAnchorAt } = require('./chain');

// Deploys RootAnchor from the committed artifact, signed by `wallet` (which
// becomes the owner). Returns { address, txHash, blockNumber, gasUsed }.
async function deployRootAnchor(conn, wallet, { confirmations = 1 } = {}) {
  const { abi, bytecode } = loadArtifact();
  const factory = new ethers.ContractFactory(abi, bytecode, wallet);
  const tx = await onChain(conn, 'sending the deployment', () => factory.getDeployTransaction())
    .then((req) => onChain(conn, 'sending the deployment', () => wallet.sendTransaction(req)));
  const receipt = await waitForReceipt(conn, tx.hash, { confirmations });
  if (receipt.status !== 1) throw new Error(`deployment transaction ${tx.hash} reverted`);
  return { address: receipt.contractAddress, txHash: tx.hash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed };
}

// Registers `anchorer` for `logId` (owner only). Returns { txHash,
// blockNumber, gasUsed }, or { unchanged: true } when already registered.
async function registerAnchorer(conn, wallet, contractAddress, logId, anchorer, { confirmations = 1 } = {}) {
  if (!ethers.isAddress(anchorer)) throw new Error(`anchorer is not an address: "${anchorer}"`);
  const contract = rootAnchorAt(conn, contractAddress, wallet);
  const code = await onChain(conn, 'reading the contract code', () => conn.provider.getCode(contractAddress));
  if (code === '0x') throw new Error(`no contract at ${contractAddress} on chain ${conn.chainId}`);
  const current = await onChain(conn, 'reading anchorerOf', () => contract.anchorerOf(logId));
  if (current.toLowerCase() === anchorer.toLowerCase()) return { unchanged: true };
  const tx = await onChain(conn, 'registering the anchorer', () => contract.register(logId, anchorer));
  const receipt = await waitForReceipt(conn, tx.hash, { confirmations });
  if (receipt.status !== 1) throw new Error(`register transaction ${tx.hash} reverted`);
  return { txHash: tx.hash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed };
}

module.exports = { deployRootAnchor, registerAnchorer };
