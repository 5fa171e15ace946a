'use strict';
// The three scripts as a user runs them: deploy.js, anchor.js (against a
// gRPC stepproofd stand-in built from the real .proto) and verify-anchor.js,
// with their output and exit status.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startAnvil, DEV_KEYS } = require('./helpers/anvil');
const { FakeLog } = require('./helpers/fake_log');
const { startFakeServer } = require('./helpers/fake_server');

const BIN = path.resolve(__dirname, '..', 'bin');
const ORIGIN = 'cli-test.example/log';

function run(script, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(BIN, script), ...args], {
      env: { ...process.env, STEPPROOF_ANCHOR_PRIVATE_KEY: '', STEPPROOF_API_TOKEN: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('every script has --help and rejects bad usage with exit status 2', async () => {
  for (const script of ['deploy.js', 'anchor.js', 'verify-anchor.js', 'compile.js']) {
    const help = await run(script, ['--help']);
    assert.equal(help.code, 0, script);
    assert.match(help.stdout, /^usage: /, script);
    const bad = await run(script, ['--no-such-flag']);
    assert.equal(bad.code, 2, script);
    assert.match(bad.stderr, /^error: .*no-such-flag/, script);
  }
  const missing = await run('anchor.js', ['--server', '127.0.0.1:1']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing required option --key/);
});

test('deploy, anchor over gRPC, verify a checkpoint and a bundle from the command line', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'anchor-cli-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const chain = await startAnvil();
  t.after(() => chain.stop());
  const log = new FakeLog(ORIGIN);
  log.append(6);
  const server = await startFakeServer(log, { token: 'sekret' });
  t.after(() => server.stop());
  const keyFile = path.join(tmp, 'anchor.key');
  fs.writeFileSync(keyFile, DEV_KEYS[0] + '\n', { mode: 0o600 });
  const tokenFile = path.join(tmp, 'token');
  fs.writeFileSync(tokenFile, 'sekret\n');

  const looseKey = path.join(tmp, 'loose.key');
  fs.writeFileSync(looseKey, DEV_KEYS[0] + '\n', { mode: 0o644 });
  fs.chmodSync(looseKey, 0o644);
  const loose = await run('deploy.js', ['--rpc', chain.url, '--key-file', looseKey]);
  assert.equal(loose.code, 1);
  assert.match(loose.stderr, /cannot use private key file .*loose\.key: it is accessible by group or others \(chmod 600 it\)/);

  const deployOut = path.join(tmp, 'deployment.json');
  const dep = await run('deploy.js', ['--rpc', chain.url, '--key-file', keyFile, '--origin', ORIGIN, '--out', deployOut]);
  assert.equal(dep.code, 0, dep.stderr);
  assert.match(dep.stdout, /deployed RootAnchor at 0x[0-9a-fA-F]{40} .* gas \d+/);
  const deployment = JSON.parse(fs.readFileSync(deployOut, 'utf8'));
  const contract = deployment.contract;
  assert.equal(deployment.anchorer, '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');

  const common = ['--server', server.address, '--key', log.signer.verifierKey, '--rpc', chain.url, '--contract', contract];
  // Without the API token, RecordAnchor is refused after anchoring: exit 1, and it says why.
  const noToken = await run('anchor.js', [...common, '--key-file', keyFile]);
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /RecordAnchor failed: UNAUTHENTICATED/);
  // With it: the anchor exists already, so it is reported and recorded again.
  const a = await run('anchor.js', [...common, '--token-file', tokenFile], { STEPPROOF_ANCHOR_PRIVATE_KEY: DEV_KEYS[0] });
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, new RegExp(`already anchored ${ORIGIN} size 6 root 0x${log.rootAt(6).toString('hex')}`));
  assert.match(a.stdout, /tx 0x[0-9a-f]{64} block \d+ \(chain 31337\)/);
  assert.match(a.stdout, /recorded in stepproofd/);
  assert.equal(log.recorded.length, 1);
  assert.equal(log.recorded[0].contract_address, contract.toLowerCase());
  // Once more: stepproofd answers ALREADY_EXISTS, which is success.
  const again = await run('anchor.js', [...common, '--token-file', tokenFile, '--key-file', keyFile]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /already anchored .*\n.*\nstepproofd had recorded it already/);
  assert.equal(log.recorded.length, 1);

  log.append(5);
  const b = await run('anchor.js', [...common, '--token-file', tokenFile, '--key-file', keyFile, '--json']);
  assert.equal(b.code, 0, b.stderr);
  const result = JSON.parse(b.stdout);
  assert.equal(result.status, 'anchored');
  assert.equal(result.treeSize, '11');
  assert.deepEqual(log.consistencyCalls, [[6, 11]]);

  const cpFile = path.join(tmp, 'cp11.txt');
  fs.writeFileSync(cpFile, log.checkpointAt(11));
  const v = await run('verify-anchor.js', ['--checkpoint', cpFile, '--key', log.signer.verifierKey, '--rpc', chain.url, '--contract', contract]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /root equal: .* size 11/);
  assert.match(v.stdout, new RegExp(`anchored in tx ${result.txHash} block ${result.blockNumber} at \\d{4}-\\d\\d-\\d\\dT.* \\(1 confirmations, chain 31337\\)`));
  // The deployment file stands for --contract (and the first block to search).
  const vd = await run('verify-anchor.js', ['--checkpoint', cpFile, '--key', log.signer.verifierKey, '--rpc', chain.url, '--deployment', deployOut]);
  assert.equal(vd.code, 0, vd.stderr);
  assert.match(vd.stdout, new RegExp(`anchored in tx ${result.txHash}`));
  const late = await run('verify-anchor.js', ['--checkpoint', cpFile, '--key', log.signer.verifierKey, '--rpc', chain.url, '--deployment', deployOut, '--from-block', String(result.blockNumber + 1)]);
  assert.equal(late.code, 1);
  assert.match(late.stderr, /RootAnchored event was not found from block/);
  const v2 = await run('verify-anchor.js', ['--checkpoint', cpFile, '--key', log.signer.verifierKey, '--rpc', chain.url, '--contract', contract, '--min-confirmations', '3']);
  assert.equal(v2.code, 1);
  assert.match(v2.stderr, /only 1 confirmations, need 3/);

  // Unanchored size: exit 1 and says so.
  const cp7 = path.join(tmp, 'cp7.txt');
  fs.writeFileSync(cp7, log.checkpointAt(7));
  const u = await run('verify-anchor.js', ['--checkpoint', cp7, '--key', log.signer.verifierKey, '--rpc', chain.url, '--contract', contract]);
  assert.equal(u.code, 1);
  assert.match(u.stderr, /NOT ANCHORED/);

  // A bundle carrying the log checkpoint and the recorded anchor.
  const bundle = {
    format: 'stepproof.bundle/v1',
    log: { leaf_index: 3, proof: [], checkpoint: log.checkpointAt(11) },
    anchor: { chain_id: '31337', contract_address: contract.toLowerCase(), tx_hash: result.txHash, block_number: result.blockNumber },
  };
  const bundleFile = path.join(tmp, 'bundle.json');
  fs.writeFileSync(bundleFile, JSON.stringify(bundle));
  const vb = await run('verify-anchor.js', ['--bundle', bundleFile, '--key', log.signer.verifierKey, '--rpc', chain.url]);
  assert.equal(vb.code, 0, vb.stderr);
  assert.match(vb.stderr, /using the contract named by the bundle/);
  // The bundle naming another transaction is caught.
  fs.writeFileSync(bundleFile, JSON.stringify({ ...bundle, anchor: { ...bundle.anchor, tx_hash: '0x' + '11'.repeat(32) } }));
  const vt = await run('verify-anchor.js', ['--bundle', bundleFile, '--key', log.signer.verifierKey, '--rpc', chain.url, '--contract', contract]);
  assert.equal(vt.code, 1);
  assert.match(vt.stderr, /the bundle names transaction 0x1111/);
  // A tampered checkpoint (root changed, not re-signed) fails on its signature.
  fs.writeFileSync(cpFile, log.checkpointAt(11).replace(log.rootAt(11).toString('base64'), Buffer.alloc(32, 9).toString('base64')));
  const vs = await run('verify-anchor.js', ['--checkpoint', cpFile, '--key', log.signer.verifierKey, '--rpc', chain.url, '--contract', contract]);
  assert.equal(vs.code, 1);
  assert.match(vs.stderr, /log checkpoint rejected: signature by key .* does not verify/);

  // Chain gone: a clear error and exit 1.
  await chain.stop();
  const gone = await run('verify-anchor.js', ['--checkpoint', cp7, '--key', log.signer.verifierKey, '--rpc', chain.url, '--contract', contract]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /^error: chain RPC http:\/\/127\.0\.0\.1:\d+ is unreachable \(ECONNREFUSED\)/);
  // stepproofd gone: a clear error too.
  await server.stop();
  const c2 = await startAnvil();
  t.after(() => c2.stop());
  const noServer = await run('anchor.js', ['--server', server.address, '--key', log.signer.verifierKey, '--rpc', c2.url, '--contract', contract, '--key-file', keyFile]);
  assert.equal(noServer.code, 1);
  assert.match(noServer.stderr, /stepproofd 127\.0\.0\.1:\d+: GetLogCheckpoint failed: UNAVAILABLE/);
});
