'use strict';
// RFC 9162 (RFC 6962) Merkle tree hashing and consistency-proof verification
// (RFC 9162 section 2.1.4.2), for checking that a new log checkpoint extends
// the last anchored one before anchoring it. Hashes are 32-byte Buffers.

const crypto = require('node:crypto');

const HASH_SIZE = 32;

function sha256(...parts) {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function hashLeaf(data) {
  return sha256(Buffer.from([0x00]), data);
}

function hashChildren(left, right) {
  return sha256(Buffer.from([0x01]), left, right);
}

function checkHash(h, what) {
  if (!Buffer.isBuffer(h) || h.length !== HASH_SIZE) {
    throw new Error(`${what} is not a 32-byte hash`);
  }
}

// Throws Error naming the failure unless `proof` proves that the tree of
// size `size2` with root `root2` extends the tree of size `size1` with root
// `root1`. Sizes are BigInt or safe-integer Numbers.
// Edge cases (as transparency-dev/merkle): size1 == size2 needs an empty
// proof and equal roots; size1 == 0 needs an empty proof (any tree extends
// the empty one); size1 > size2 is always rejected.
function verifyConsistency(size1, size2, root1, root2, proof) {
  let first = BigInt(size1);
  let second = BigInt(size2);
  checkHash(root1, 'first root');
  checkHash(root2, 'second root');
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`));
  if (first < 0n || second < 0n) throw new Error('negative tree size');
  if (first > second) throw new Error(`first size ${first} is larger than second size ${second}`);
  if (first === second) {
    if (proof.length !== 0) throw new Error('consistency proof between equal sizes must be empty');
    if (!root1.equals(root2)) throw new Error(`roots differ at equal size ${first}`);
    return;
  }
  if (first === 0n) {
    if (proof.length !== 0) throw new Error('consistency proof from size 0 must be empty');
    return;
  }
  if (proof.length === 0) throw new Error('empty consistency proof');

  // Step 2: if first is an exact power of two, the first root is the first
  // node of the path.
  let path = proof;
  if ((first & (first - 1n)) === 0n) path = [root1, ...proof];

  let fn = first - 1n;
  let sn = second - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new Error('consistency proof is too long');
    if ((fn & 1n) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (!(fn & 1n)) {
        while (!(fn & 1n) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error('consistency proof is too short');
  if (!fr.equals(root1)) throw new Error(`consistency proof does not match the root at size ${first}`);
  if (!sr.equals(root2)) throw new Error(`consistency proof does not match the root at size ${second}`);
}

module.exports = { HASH_SIZE, sha256, hashLeaf, hashChildren, verifyConsistency };
