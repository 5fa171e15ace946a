'use strict';
// Signed notes, verifier keys and checkpoints: the published C2SP and Go
// examples, round trips with fresh keys, and mutations.
const test = require('node:test');
const assert = require('node:assert/strict');
const { parseVerifierKey, openNote, openCheckpoint, parseCheckpoint, parseNote } = require('../lib/note');
const { makeNoteSigner, checkpointText } = require('./helpers/fake_log');

// c2sp.org/signed-note, "Example".
const SPEC_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const SPEC_NOTE = 'This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';
// golang.org/x/mod/sumdb/note package documentation.
const GO_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_NOTE = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

test('opens the published C2SP and Go signed-note examples', () => {
  assert.equal(openNote(SPEC_NOTE, parseVerifierKey(SPEC_VKEY)), 'This is an example message.\n');
  assert.equal(openNote(GO_NOTE, parseVerifierKey(GO_VKEY)),
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n");
});

test('rejects the published note with its text or signature changed', () => {
  const v = parseVerifierKey(GO_VKEY);
  assert.throws(() => openNote(GO_NOTE.replace('cryptography', 'cryptographY'), v), /does not verify/);
  assert.throws(() => openNote(GO_NOTE.replace('x08go/', 'x08go+'), v), /does not verify/);
  assert.throws(() => openNote(SPEC_NOTE, v), /no signature by key PeterNeumann\+c74f20a3/);
});

test('ignores other keys\' signatures but rejects a bad second signature by the key', () => {
  const v = parseVerifierKey(GO_VKEY);
  const sigLine = GO_NOTE.slice(GO_NOTE.lastIndexOf('\u2014'));
  const specSig = SPEC_NOTE.slice(SPEC_NOTE.lastIndexOf('\u2014'));
  assert.ok(openNote(GO_NOTE + specSig, v));
  const badCopy = sigLine.replace('x08go/', 'x08go+');
  assert.throws(() => openNote(GO_NOTE + badCopy, v), /does not verify/);
});

test('rejects verifier keys with any character changed or a wrong key id', () => {
  for (let i = 0; i < GO_VKEY.length; i++) {
    const c = GO_VKEY[i];
    const mutated = GO_VKEY.slice(0, i) + (c === 'a' ? 'b' : 'a') + GO_VKEY.slice(i + 1);
    if (mutated === GO_VKEY) continue;
    assert.throws(() => parseVerifierKey(mutated), `mutated at ${i}`);
  }
  assert.throws(() => parseVerifierKey('PeterNeumann+c74f20a3'), /name\+keyid\+key/);
});

test('accepts a verifier key whose base64 contains a plus sign', () => {
  // transparency-dev/formats note tests: a type 0x01 key with '+' in its base64.
  const k = parseVerifierKey('TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6');
  assert.equal(k.name, 'TEST');
  assert.equal(k.keyId, 0x7997405c);
});

test('signs and opens a checkpoint with a fresh key; tampering is rejected', () => {
  const signer = makeNoteSigner('log.example/stepproof');
  const root = Buffer.alloc(32, 7);
  const note = signer.sign(checkpointText('log.example/stepproof', 42, root));
  const cp = openCheckpoint(note, parseVerifierKey(signer.verifierKey));
  assert.equal(cp.origin, 'log.example/stepproof');
  assert.equal(cp.size, 42n);
  assert.deepEqual(cp.root, root);
  const v = parseVerifierKey(signer.verifierKey);
  assert.throws(() => openCheckpoint(note.replace('\n42\n', '\n43\n'), v), /does not verify/);
  const other = makeNoteSigner('log.example/stepproof');
  assert.throws(() => openCheckpoint(note, parseVerifierKey(other.verifierKey)), /no signature by key/);
});

test('parses checkpoint extensions and rejects non-canonical sizes and roots', () => {
  const root = Buffer.alloc(32, 1).toString('base64');
  assert.deepEqual(parseCheckpoint(`o\n5\n${root}\next one\n`).extensions, ['ext one']);
  assert.throws(() => parseCheckpoint(`o\n05\n${root}\n`), /canonical decimal/);
  assert.throws(() => parseCheckpoint(`o\n-5\n${root}\n`), /canonical decimal/);
  assert.throws(() => parseCheckpoint(`o\n18446744073709551616\n${root}\n`), /over 2\^64/);
  assert.throws(() => parseCheckpoint(`o\n5\n${Buffer.alloc(31).toString('base64')}\n`), /32 bytes/);
  assert.throws(() => parseCheckpoint(`o\n5\n${root}`), /final newline/);
  assert.throws(() => parseCheckpoint(`\n5\n${root}\n`), /empty origin/);
  assert.throws(() => parseNote('text\n\u2014 k AAAA\n'), /blank line/);
});

// The project's provenance vectors (tests/provenance/vectors/, made by the C++
// provenance library, checked by the Python verifier), values copied here.
const PROJECT_VKEY = 'log.stepproof.example+bfa791f1+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea';
const PROJECT_LOG_CHECKPOINT = 'log.stepproof.example\n3\nn5e3R2BXcczDt2/Qcb4hwlvll8mzrJYkmtPl5U5J0e8=\n\n\u2014 log.stepproof.example v6eR8fYwyxTi0XcRz4tWIgCrIMHLr47mF8hiVSNMCu/n8Ix7+GiH16dRQC+zVjV07gMaiwWAIHORgTlVBYWm+C938gY=\n';
const PROJECT_FINAL_TRACE_CHECKPOINT = 'log.stepproof.example/trace/000102030405060708090a0b0c0d0e0f\n3\nokKmKBNxsNNsR3LbpyQtd0YJsIf3iaQIcfe2EhlwNwU=\nstepproof.final\n\n\u2014 log.stepproof.example v6eR8dT4VSZdjQPke2Vs5+/WTSEMBa4CnWqar3JxJ//rU9GcxXLbNzbTzbXbJhlhgmFbCihqC6kWOmDpUBjPnKqsDA8=\n';

test('opens the log and trace checkpoints of the project vectors (C++ provenance output)', () => {
  const v = parseVerifierKey(PROJECT_VKEY);
  const log = openCheckpoint(PROJECT_LOG_CHECKPOINT, v);
  assert.equal(log.origin, 'log.stepproof.example');
  assert.equal(log.size, 3n);
  assert.equal(log.root.toString('hex'), '9f97b747605771ccc3b76fd071be21c25be597c9b3ac96249ad3e5e54e49d1ef');  // vectors.json log.root
  const trace = openCheckpoint(PROJECT_FINAL_TRACE_CHECKPOINT, v);
  assert.equal(trace.root.toString('hex'), 'a242a6281371b0d36c4772dba7242d774609b087f789a40871f7b61219703705');
  assert.deepEqual(trace.extensions, ['stepproof.final']);
  assert.throws(() => openCheckpoint(PROJECT_LOG_CHECKPOINT.replace('\n3\n', '\n2\n'), v), /does not verify/);
});
