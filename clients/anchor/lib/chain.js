'use strict';
// The chain side: a JSON-RPC connection that fails fast (never retries
// forever when the node goes away), the RootAnchor contract, log ids, and
// revert reasons in words.

const fs = require('node:fs');
const { ethers } = require('ethers');
const { sha256 } = require('./merkle');
const { loadArtifact } = require('./compile');

const DEFAULT_TIMEOUT_MS = 15000;

// logId = SHA-256 of the log origin string (UTF-8), as 0x-hex bytes32.
function logIdOf(origin) {
  return '0x' + sha256(Buffer.from(origin, 'utf8')).toString('hex');
}

function hex32(buf) {
  return '0x' + Buffer.from(buf).toString('hex');
}

async function rawRpc(url, method, params, timeoutMs) {
  let res;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const cause = e.cause && e.cause.code ? e.cause.code : e.name === 'TimeoutError' ? 'timeout' : e.message;
    throw new Error(`chain RPC ${url} is unreachable (${cause})`);
  }
  if (!res.ok) throw new Error(`chain RPC ${url} answered HTTP ${res.status}`);
  const body = await res.json().catch(() => null);
  if (!body || body.error || body.result === undefined) {
    throw new Error(`chain RPC ${url}: ${method} failed: ${body && body.error ? body.error.message : 'bad response'}`);
  }
  return body.result;
}

// Connects to `url`: asks the chain id once (so an unreachable node is an
// immediate, clear error), then builds a provider with that static network.
async function connect(url, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  if (!/^https?:\/\//.test(url)) throw new Error(`--rpc must be an http(s):// URL, got "${url}"`);
  const chainId = BigInt(await rawRpc(url, 'eth_chainId', [], timeoutMs));
  const req = new ethers.FetchRequest(url);
  req.timeout = timeoutMs;
  const provider = new ethers.JsonRpcProvider(req, ethers.Network.from(chainId), {
    staticNetwork: true,
    batchMaxCount: 1,
    polling: true,
    pollingInterval: 250,
    cacheTimeout: -1,
  });
  return { url, chainId, provider, timeoutMs };
}

// Turns errors from ethers into one line that says what happened.
function describeError(e, rpcUrl) {
  if (!e) return 'unknown error';
  const revert = e.revert || (e.info && e.info.error && e.info.error.revert);
  if (revert && revert.name) return `contract rejected the call: ${revert.name}(${revert.args.map(String).join(', ')})`;
  const code = e.code || '';
  const inner = e.error && e.error.code ? e.error.code : e.cause && e.cause.code ? e.cause.code : '';
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(inner) ||
      code === 'TIMEOUT' || /ECONNREFUSED|ECONNRESET|socket hang up|fetch failed/.test(e.message || '')) {
    return `chain RPC ${rpcUrl} went away (${inner || code || e.message})`;
  }
  if (code === 'CALL_EXCEPTION') return `contract call reverted: ${e.shortMessage || e.message}`;
  return e.shortMessage || e.message || String(e);
}

// Runs `fn`, rethrowing ethers errors as Error(describeError(..)).
async function onChain(conn, what, fn) {
  try {
    return await fn();
  } catch (e) {
    throw new Error(`${what}: ${describeError(e, conn.url)}`);
  }
}

function rootAnchorAt(conn, address, runner) {
  if (!ethers.isAddress(address)) throw new Error(`--contract is not an address: "${address}"`);
  const { abi } = loadArtifact();
  return new ethers.Contract(ethers.getAddress(address), abi, runner || conn.provider);
}

// Reads a 0x-hex private key from `file` (which, like an ssh key, must not
// be readable by group or others) or else the env var.
function loadPrivateKey(file, envName = 'STEPPROOF_ANCHOR_PRIVATE_KEY') {
  let hex;
  if (file) {
    try {
      if (process.platform !== 'win32' && (fs.statSync(file).mode & 0o077) !== 0) {
        throw new Error('it is accessible by group or others (chmod 600 it)');
      }
      hex = fs.readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new Error(`cannot use private key file ${file}: ${e.message}`);
    }
  } else {
    hex = (process.env[envName] || '').trim();
    if (!hex) throw new Error(`no signing key: pass --key-file FILE or set ${envName}`);
  }
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(hex)) throw new Error('private key is not 32 bytes of hex');
  return hex.startsWith('0x') ? hex : '0x' + hex;
}

// Polls for the receipt of `hash` until it has `confirmations` blocks, with a
// deadline; a node that goes away is an error, never an endless wait.
async function waitForReceipt(conn, hash, { confirmations = 1, timeoutMs = 60000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const receipt = await onChain(conn, `waiting for transaction ${hash}`, () => conn.provider.getTransactionReceipt(hash));
    if (receipt) {
      const head = await onChain(conn, 'reading the block number', () => conn.provider.getBlockNumber());
      if (head - receipt.blockNumber + 1 >= confirmations) return receipt;
    }
    if (Date.now() > deadline) throw new Error(`transaction ${hash} not confirmed within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The RootAnchored event of (logId, treeSize), or null.
async function findAnchorEvent(conn, contract, logId, treeSize, fromBlock = 0) {
  const head = await onChain(conn, 'reading the block number', () => conn.provider.getBlockNumber());
  if (fromBlock > head) return null;
  const events = await onChain(conn, 'reading RootAnchored events', () =>
    contract.queryFilter(contract.filters.RootAnchored(logId, treeSize), fromBlock, head));
  return events.length > 0 ? events[events.length - 1] : null;
}

module.exports = {
  logIdOf, hex32, connect, describeError, onChain, rootAnchorAt, loadPrivateKey, waitForReceipt, findAnchorEvent,
  DEFAULT_TIMEOUT_MS,
};
