'use strict';
// A small in-memory StepProof log for tests: an RFC 6962 tree built by the
// recursive definitions of RFC 9162 section 2.1 (MTH and SUBPROOF), written
// independently of lib/merkle.js's iterative verifier, and log checkpoints
// signed as C2SP signed notes with a fresh Ed25519 key.

const crypto = require('node:crypto');

function sha256(...parts) {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}
const leafHash = (d) => sha256(Buffer.from([0]), d);
const nodeHash = (l, r) => sha256(Buffer.from([1]), l, r);

function largestPowerOfTwoBelow(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// MTH(D[n]) over leaf hashes.
function mth(leaves) {
  if (leaves.length === 0) return sha256(Buffer.alloc(0));
  if (leaves.length === 1) return leaves[0];
  const k = largestPowerOfTwoBelow(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

// SUBPROOF(m, D[n], b).
function subproof(m, leaves, b) {
  const n = leaves.length;
  if (m === n) return b ? [] : [mth(leaves)];
  const k = largestPowerOfTwoBelow(n);
  if (m <= k) return [...subproof(m, leaves.slice(0, k), b), mth(leaves.slice(k))];
  return [...subproof(m - k, leaves.slice(k), false), mth(leaves.slice(0, k))];
}

function consistencyProof(m, leaves) {
  if (m === 0 || m === leaves.length) return [];
  return subproof(m, leaves, true);
}

// A signer of C2SP notes: { name, verifierKey, sign(text) -> note }.
function makeNoteSigner(name) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
  const id = sha256(Buffer.from(name), Buffer.from([0x0a, 0x01]), raw).subarray(0, 4);
  const verifierKey = `${name}+${id.toString('hex')}+${Buffer.concat([Buffer.from([1]), raw]).toString('base64')}`;
  const sign = (text) => {
    const sig = crypto.sign(null, Buffer.from(text, 'utf8'), privateKey);
    return `${text}\n\u2014 ${name} ${Buffer.concat([id, sig]).toString('base64')}\n`;
  };
  return { name, verifierKey, sign };
}

function checkpointText(origin, size, root) {
  return `${origin}\n${size}\n${root.toString('base64')}\n`;
}

// The fake log: append(n) adds n leaves; latestLogCheckpoint(),
// logConsistency(s1, s2) and recordAnchor(..) as lib/stepproofd.js has them.
class FakeLog {
  constructor(origin, signer = makeNoteSigner('test.example/log')) {
    this.origin = origin;
    this.signer = signer;
    this.leaves = [];
    this.recorded = [];
    this.consistencyCalls = [];
  }
  append(n) {
    for (let i = 0; i < n; i++) this.leaves.push(leafHash(Buffer.from(`${this.origin} trace ${this.leaves.length}`)));
  }
  rootAt(size) { return mth(this.leaves.slice(0, size)); }
  checkpointAt(size) { return this.signer.sign(checkpointText(this.origin, size, this.rootAt(size))); }
  async latestLogCheckpoint() { return this.checkpointAt(this.leaves.length); }
  async logConsistency(size1, size2) {
    this.consistencyCalls.push([Number(size1), Number(size2)]);
    return consistencyProof(Number(size1), this.leaves.slice(0, Number(size2)));
  }
  // Returns null for a transaction recorded before, as lib/stepproofd.js does.
  async recordAnchor(a) {
    if (this.recorded.some((x) => x.txHash !== undefined && x.txHash === a.txHash)) return null;
    this.recorded.push(a);
    return this.checkpointAt(Number(a.logSize));
  }
}

module.exports = { mth, consistencyProof, makeNoteSigner, checkpointText, FakeLog, leafHash, nodeHash };
