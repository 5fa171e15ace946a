'use strict';
// RFC 9162 consistency verification against the published RFC 6962 vectors
// (copied from the project's shared vectors file) and against proofs made by
// the recursive SUBPROOF definition (test/helpers/fake_log.js).
const test = require('node:test');
const assert = require('node:assert/strict');
const { verifyConsistency, hashLeaf } = require('../lib/merkle');
const { mth, consistencyProof, leafHash } = require('./helpers/fake_log');

const LEAF_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
// "consistency M N : path" lines of rfc6962-vectors.txt, verbatim.
const CONSISTENCY = `
1 1 : (empty)
1 2 : 96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7
2 2 : (empty)
1 3 : 96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7
2 3 : 0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7
3 3 : (empty)
1 4 : 96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e
2 4 : 5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e
3 4 : 0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7 07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7 fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125
4 4 : (empty)
1 5 : 96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b
2 5 : 5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b
3 5 : 0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7 07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7 fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125 bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b
4 5 : bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b
5 5 : (empty)
1 6 : 96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e 0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a
2 6 : 5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e 0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a
3 6 : 0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7 07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7 fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125 0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a
4 6 : 0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a
5 6 : bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b 4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658 d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7
6 6 : (empty)
1 7 : 96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e 837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e
2 7 : 5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e 837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e
3 7 : 0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7 07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7 fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125 837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e
4 7 : 837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e
5 7 : bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b 4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658 b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7
6 7 : 0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7
7 7 : (empty)
1 8 : 96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e 6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4
2 8 : 5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e 6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4
3 8 : 0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7 07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7 fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125 6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4
4 8 : 6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4
5 8 : bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b 4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658 ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7
6 8 : 0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7
7 8 : b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f 46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1 0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7
8 8 : (empty)`;

const h = (hex) => Buffer.from(hex, 'hex');
const VECTORS = CONSISTENCY.trim().split('\n').map((line) => {
  const [sizes, path] = line.split(' : ');
  const [m, n] = sizes.split(' ').map(Number);
  return { m, n, proof: path === '(empty)' ? [] : path.split(' ').map(h) };
});

function flipByte(buf, i) {
  const b = Buffer.from(buf);
  b[i] ^= 0x01;
  return b;
}

test('leaf hashes and roots of the reference tree match the RFC 6962 vectors', () => {
  const leaves = LEAF_INPUTS.map((x) => hashLeaf(h(x)));
  for (let n = 0; n <= 8; n++) assert.equal(mth(leaves.slice(0, n)).toString('hex'), ROOTS[n], `root ${n}`);
  assert.deepEqual(leaves.map((l) => l.toString('hex')), LEAF_INPUTS.map((x) => leafHash(h(x)).toString('hex')));
});

test('accepts every published RFC 6962 consistency vector', () => {
  assert.equal(VECTORS.length, 36);
  for (const { m, n, proof } of VECTORS) {
    assert.doesNotThrow(() => verifyConsistency(m, n, h(ROOTS[m]), h(ROOTS[n]), proof), `consistency ${m} ${n}`);
  }
});

test('reference SUBPROOF reproduces the published consistency vectors', () => {
  const leaves = LEAF_INPUTS.map((x) => hashLeaf(h(x)));
  for (const { m, n, proof } of VECTORS) {
    assert.deepEqual(consistencyProof(m, leaves.slice(0, n)).map((x) => x.toString('hex')), proof.map((x) => x.toString('hex')));
  }
});

test('rejects a consistency proof with any byte of any node changed', () => {
  for (const { m, n, proof } of VECTORS) {
    for (let j = 0; j < proof.length; j++) {
      for (const i of [0, 13, 31]) {
        const bad = proof.slice();
        bad[j] = flipByte(proof[j], i);
        assert.throws(() => verifyConsistency(m, n, h(ROOTS[m]), h(ROOTS[n]), bad), `consistency ${m} ${n} node ${j} byte ${i}`);
      }
    }
  }
});

test('rejects wrong roots, truncated or extended proofs, and swapped sizes', () => {
  for (const { m, n, proof } of VECTORS) {
    assert.throws(() => verifyConsistency(m, n, flipByte(h(ROOTS[m]), 0), h(ROOTS[n]), proof), `old root ${m} ${n}`);
    assert.throws(() => verifyConsistency(m, n, h(ROOTS[m]), flipByte(h(ROOTS[n]), 31), proof), `new root ${m} ${n}`);
    if (proof.length > 0) {
      assert.throws(() => verifyConsistency(m, n, h(ROOTS[m]), h(ROOTS[n]), proof.slice(0, -1)), `truncated ${m} ${n}`);
    }
    assert.throws(() => verifyConsistency(m, n, h(ROOTS[m]), h(ROOTS[n]), [...proof, h(ROOTS[0])]), `extended ${m} ${n}`);
    if (m !== n) {
      assert.throws(() => verifyConsistency(n, m, h(ROOTS[n]), h(ROOTS[m]), proof), `swapped ${m} ${n}`);
    }
  }
});

test('accepts proofs between every pair of sizes up to 70 and rejects them against another pair', () => {
  const leaves = Array.from({ length: 70 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
  const roots = Array.from({ length: 71 }, (_, n) => mth(leaves.slice(0, n)));
  for (let n = 1; n <= 70; n++) {
    for (let m = 1; m <= n; m++) {
      const proof = consistencyProof(m, leaves.slice(0, n));
      verifyConsistency(m, n, roots[m], roots[n], proof);
      if (m > 1 && m < n) assert.throws(() => verifyConsistency(m - 1, n, roots[m - 1], roots[n], proof), `${m - 1}->${n} with proof of ${m}->${n}`);
    }
  }
});

test('size 0 extends to anything with an empty proof; sizes are BigInt-safe', () => {
  verifyConsistency(0, 5, h(ROOTS[0]), h(ROOTS[5]), []);
  assert.throws(() => verifyConsistency(0, 5, h(ROOTS[0]), h(ROOTS[5]), [h(ROOTS[1])]));
  verifyConsistency(4n, 8n, h(ROOTS[4]), h(ROOTS[8]), VECTORS.find((v) => v.m === 4 && v.n === 8).proof);
  assert.throws(() => verifyConsistency(3, 3, h(ROOTS[3]), h(ROOTS[4]), []), /roots differ/);
});

test('verifies the trace consistency proofs of the project vectors (C++ provenance output)', () => {
  // tests/provenance/vectors/vectors.json: roots of the signed trace
  // checkpoints at sizes 1, 2, 3 and its consistency_proofs.
  const b64 = (x) => Buffer.from(x, 'base64');
  const roots = { 1: b64('tsMkHpg7ovVSPPuH5UznoM65fAjfNCbNX2T4xz59idg='), 2: b64('w8rWtiYAsOg+GuQb51+mPZHWsC24F6/WfGTs/TTi+4U='), 3: b64('okKmKBNxsNNsR3LbpyQtd0YJsIf3iaQIcfe2EhlwNwU=') };
  assert.equal(roots[3].toString('hex'), 'a242a6281371b0d36c4772dba7242d774609b087f789a40871f7b61219703705');
  const p13 = ['3015b441ce0dcfb7fab0fae1824b8f94310741d0fe081c71dbc84ec7795ae2b7', '1a84ab26f5b4dbaddf869660ee83d7189d26d0e25518fa32a88c90556d3dc87f'].map(h);
  const p23 = ['1a84ab26f5b4dbaddf869660ee83d7189d26d0e25518fa32a88c90556d3dc87f'].map(h);
  verifyConsistency(1, 3, roots[1], roots[3], p13);
  verifyConsistency(2, 3, roots[2], roots[3], p23);
  assert.throws(() => verifyConsistency(1, 3, roots[2], roots[3], p13));
});
