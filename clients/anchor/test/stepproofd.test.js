'use strict';
// End to end with the real server: stepproofd (from STEPPROOF_BIN_DIR) makes
// traces, its log checkpoints are anchored on anvil by lib/anchoring.js over
// gRPC, and the proof bundle it then serves carries the anchor, which
// verify-anchor accepts. Skipped, saying why, when the stepproofd binary is
// not built or it has no model (no embedded model and no
// STEPPROOF_TEST_MODEL=path.gguf).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const grpc = require('@grpc/grpc-js');
const { ethers } = require('ethers');
const { startAnvil, DEV_KEYS } = require('./helpers/anvil');
const { connect, logIdOf } = require('../lib/chain');
const { parseVerifierKey } = require('../lib/note');
const { deployRootAnchor, registerAnchorer } = require('../lib/deploy');
const { anchorLatest } = require('../lib/anchoring');
const { verifyAnchored, logCheckpointOfBundle } = require('../lib/verify');
const { StepProofClient } = require('../lib/stepproofd');

const REPO = path.resolve(__dirname, '..', '..', '..');
const BIN = process.env.STEPPROOF_BIN_DIR ? path.join(process.env.STEPPROOF_BIN_DIR, 'stepproofd') : '';
const MODEL = process.env.STEPPROOF_TEST_MODEL || '';
const EMBEDDED = path.join(REPO, 'models', 'stepproof-arith.gguf');

function skipReason() {
  if (!BIN || !fs.existsSync(BIN)) return `no stepproofd binary (${BIN || 'STEPPROOF_BIN_DIR unset'})`;
  if (!MODEL && !fs.existsSync(EMBEDDED)) return 'no model: no embedded model (models/stepproof-arith.gguf) and STEPPROOF_TEST_MODEL unset';
  if (MODEL && !fs.existsSync(MODEL)) return `STEPPROOF_TEST_MODEL ${MODEL} does not exist`;
  return false;
}

function startStepproofd(dataDir, tokenFile) {
  const args = ['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--api-token-file', tokenFile, '--threads', '1'];
  if (MODEL) args.push('--model', MODEL);
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { stop(); reject(new Error(`stepproofd did not start:\n${out}`)); }, 60000);
    const onData = (d) => {
      out += d.toString();
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ address: m[1], stop }); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`stepproofd exited ${code}:\n${out}`)); });
  });
}

function generate(client, seed) {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${client.token}`);
  return new Promise((resolve, reject) => {
    const s = client.client.Generate({ prompt: 'What is 2+3?', max_tokens: 12, seed: String(seed), sampling: { greedy: true } }, md);
    s.on('data', () => {});
    s.on('error', reject);
    s.on('end', resolve);
  });
}

// Waits until the log has a checkpoint of at least `size` leaves.
async function waitForLogSize(client, size) {
  const deadline = Date.now() + 30000;
  for (;;) {
    const res = await client.call('GetLogCheckpoint', { size: 0 }).catch(() => null);
    if (res && Number(res.size) >= size) return Number(res.size);
    if (Date.now() > deadline) throw new Error(`log did not reach size ${size}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('anchors a real stepproofd log and its bundles carry the anchor', { skip: skipReason() }, async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'anchor-sd-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const tokenFile = path.join(tmp, 'token');
  fs.writeFileSync(tokenFile, 'test-token\n', { mode: 0o600 });
  let server;
  try {
    server = await startStepproofd(path.join(tmp, 'data'), tokenFile);
  } catch (e) {
    // Built before models/stepproof-arith.gguf existed: nothing to serve.
    if (!MODEL && /no embedded model/.test(e.message)) return t.skip('this stepproofd build has no embedded model');
    throw e;
  }
  t.after(() => server.stop());
  const chain = await startAnvil();
  t.after(() => chain.stop());

  const log = new StepProofClient(server.address, { token: 'test-token' });
  t.after(() => log.close());
  const vk = await log.call('GetVerifierKey', {});
  const verifier = parseVerifierKey(vk.verifier_key);
  const conn = await connect(chain.url);
  const wallet = new ethers.Wallet(DEV_KEYS[0], conn.provider);
  const { address } = await deployRootAnchor(conn, wallet);
  await registerAnchorer(conn, wallet, address, logIdOf(vk.log_origin), wallet.address);

  await generate(log, 1);
  await generate(log, 2);
  const size1 = await waitForLogSize(log, 2);
  const a1 = await anchorLatest({ log, verifier, conn, wallet, contractAddress: address });
  assert.equal(a1.status, 'anchored');
  assert.equal(a1.treeSize, BigInt(size1));
  assert.equal(a1.recorded, 'recorded');

  await generate(log, 3);
  const size2 = await waitForLogSize(log, size1 + 1);
  const a2 = await anchorLatest({ log, verifier, conn, wallet, contractAddress: address });
  assert.equal(a2.status, 'anchored');
  assert.equal(a2.treeSize, BigInt(size2));
  const a3 = await anchorLatest({ log, verifier, conn, wallet, contractAddress: address });
  assert.equal(a3.status, 'already-anchored');
  assert.equal(a3.recorded, 'already-recorded');

  // A bundle of the first trace, served after the anchors, carries one.
  const traces = await log.call('ListTraces', { page_size: 10 });
  const oldest = traces.traces[traces.traces.length - 1];
  const proof = await log.call('GetStepProof', { trace_id: oldest.trace_id, index: '0' });
  assert.equal(proof.in_log, true);
  assert.equal(proof.anchored, true);
  const { note, anchor } = logCheckpointOfBundle(proof.bundle_json);
  assert.equal(anchor.chain_id, '31337');
  assert.equal(anchor.contract_address, address.toLowerCase());
  const v = await verifyAnchored({ conn, contractAddress: address, verifier, note });
  assert.equal(v.txHash, anchor.tx_hash);
  assert.equal(v.blockNumber, anchor.block_number);
});
