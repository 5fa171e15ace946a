'use strict';
// Starts a real local chain (anvil from the npm package @foundry-rs/anvil,
// whose platform package ships the static binary) on 127.0.0.1 and a free
// port chosen by anvil itself; stops it by its pid.

const { spawn } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');

// Anvil's default dev accounts (mnemonic "test test ... junk").
const DEV_KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
];

function anvilBinary() {
  const pkg = `@foundry-rs/anvil-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`;
  const dir = path.dirname(require.resolve(`${pkg}/package.json`));
  const bin = path.join(dir, 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil');
  if (!fs.existsSync(bin)) throw new Error(`${pkg} has no anvil binary at ${bin}`);
  return bin;
}

// Resolves to { url, port, stop() } once anvil listens.
function startAnvil({ blockTime } = {}) {
  const args = ['--host', '127.0.0.1', '--port', '0', '--accounts', '3'];
  if (blockTime) args.push('--block-time', String(blockTime));
  const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stopped = false;
  const stop = () => new Promise((resolve) => {
    if (stopped || child.exitCode !== null) return resolve();
    stopped = true;
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`anvil did not start within 20 s:\n${out}`));
    }, 20000);
    const onData = (d) => {
      out += d.toString();
      const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.stdout.resume();
        const port = Number(m[1]);
        resolve({ url: `http://127.0.0.1:${port}`, port, pid: child.pid, stop });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => { out += d.toString(); });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code) => {
      if (!stopped) { clearTimeout(timer); reject(new Error(`anvil exited with ${code}:\n${out}`)); }
    });
  });
}

module.exports = { startAnvil, anvilBinary, DEV_KEYS };
