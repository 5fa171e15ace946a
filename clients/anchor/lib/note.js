'use strict';
// C2SP signed notes, verifier keys and tlog checkpoints, verify side only
// (the same rules as provenance/note.h, provenance/verifier_key.h and
// provenance/checkpoint.h; docs/FORMAT.md).
//   note       = text "\n" 1*(signature line)
//   signature  = "\u2014 " name " " base64(4-byte key id || 64-byte Ed25519 sig) "\n"
//   verifier   = name "+" hex8(key id) "+" base64(0x01 || 32-byte public key)
//   key id     = SHA-256(name || 0x0A || 0x01 || public key)[0:4], big-endian
//   checkpoint = origin "\n" decimal size "\n" base64(root) "\n" *(extension "\n")

const crypto = require('node:crypto');

const EM_DASH = '\u2014';
const ED25519_TYPE = 0x01;
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const MAX_SIGNATURES = 16;

function decodeCanonicalBase64(s, what) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) {
    throw new Error(`${what}: not padded base64`);
  }
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) throw new Error(`${what}: not canonical base64`);
  return b;
}

function isValidKeyName(name) {
  return name.length > 0 && !/[+\s\p{Cc}]/u.test(name);
}

function keyId(name, publicKey) {
  const h = crypto.createHash('sha256');
  h.update(Buffer.from(name, 'utf8'));
  h.update(Buffer.from([0x0a, ED25519_TYPE]));
  h.update(publicKey);
  return h.digest().readUInt32BE(0);
}

// Parses "name+hex8+base64(0x01||key)". Returns { name, keyId, publicKey,
// verify(message, signature) }. Throws Error naming the problem.
function parseVerifierKey(vkey) {
  // The base64 key may itself contain '+': split at the first two only.
  const m = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(String(vkey).trim());
  if (!m) throw new Error('verifier key: expected name+keyid+key');
  const [, name, idHex, keyB64] = m;
  if (!isValidKeyName(name)) throw new Error('verifier key: bad key name');
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw new Error('verifier key: key id is not 8 lowercase hex digits');
  const raw = decodeCanonicalBase64(keyB64, 'verifier key');
  if (raw.length !== 33 || raw[0] !== ED25519_TYPE) {
    throw new Error('verifier key: not an Ed25519 key (0x01 || 32 bytes)');
  }
  const publicKey = raw.subarray(1);
  const id = parseInt(idHex, 16);
  if (keyId(name, publicKey) !== id) throw new Error('verifier key: key id does not match name and key');
  const keyObject = crypto.createPublicKey({
    key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]),
    format: 'der',
    type: 'spki',
  });
  return {
    name,
    keyId: id,
    publicKey,
    verify: (message, signature) => signature.length === 64 && crypto.verify(null, message, keyObject, signature),
  };
}

// Splits a signed note into { text, signatures: [{ name, keyId, signature }] }.
function parseNote(note) {
  if (typeof note !== 'string') throw new Error('note: not a string');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('note: no blank line before the signatures');
  const text = note.slice(0, split + 1);
  const sigBlock = note.slice(split + 2);
  if (text.length < 2) throw new Error('note: empty text');
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(text)) throw new Error('note: control character in text');
  if (!sigBlock.endsWith('\n')) throw new Error('note: signature block does not end in a newline');
  const lines = sigBlock.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new Error(`note: more than ${MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line, i) => {
    const m = /^\u2014 (\S+) (\S+)$/u.exec(line);
    if (!m) throw new Error(`note: malformed signature line ${i + 1}`);
    const blob = decodeCanonicalBase64(m[2], `note: signature line ${i + 1}`);
    if (blob.length < 5) throw new Error(`note: signature line ${i + 1} is too short`);
    return { name: m[1], keyId: blob.readUInt32BE(0), signature: blob.subarray(4) };
  });
  return { text, signatures };
}

// The note's text if it carries a valid signature by `verifier` (from
// parseVerifierKey). As docs/FORMAT.md "Signed notes": signatures by other
// (name, key id) pairs are ignored; any matching signature that does not
// verify rejects the note; no matching signature rejects it. Throws Error.
function openNote(note, verifier) {
  const { text, signatures } = parseNote(note);
  const idHex = verifier.keyId.toString(16).padStart(8, '0');
  const mine = signatures.filter((s) => s.name === verifier.name && s.keyId === verifier.keyId);
  if (mine.length === 0) throw new Error(`note has no signature by key ${verifier.name}+${idHex}`);
  const message = Buffer.from(text, 'utf8');
  if (!mine.every((s) => verifier.verify(message, s.signature))) {
    throw new Error(`signature by key ${verifier.name}+${idHex} does not verify`);
  }
  return text;
}

// Parses checkpoint text into { origin, size (BigInt), root (Buffer), extensions }.
function parseCheckpoint(text) {
  if (!text.endsWith('\n')) throw new Error('checkpoint: missing final newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new Error('checkpoint: fewer than 3 lines');
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (origin === '') throw new Error('checkpoint: empty origin');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new Error('checkpoint: size is not canonical decimal');
  const size = BigInt(sizeText);
  if (size > 0xffffffffffffffffn) throw new Error('checkpoint: size over 2^64-1');
  const root = decodeCanonicalBase64(rootText, 'checkpoint root');
  if (root.length !== 32) throw new Error('checkpoint: root is not 32 bytes');
  if (extensions.some((e) => e === '')) throw new Error('checkpoint: empty extension line');
  return { origin, size, root, extensions };
}

// openNote + parseCheckpoint.
function openCheckpoint(note, verifier) {
  return parseCheckpoint(openNote(note, verifier));
}

module.exports = { EM_DASH, keyId, parseVerifierKey, parseNote, openNote, parseCheckpoint, openCheckpoint };
