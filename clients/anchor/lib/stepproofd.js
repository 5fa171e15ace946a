'use strict';
// A small gRPC client of stepproofd (service stepproof.v1.StepProof), with the
// .proto files loaded at run time from proto/stepproof/v1/. Only the calls the
// anchoring scripts need: the latest log checkpoint, log consistency proofs
// and RecordAnchor.

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEFAULT_PROTO_DIR = path.resolve(__dirname, '..', '..', '..', 'proto');
const DEFAULT_DEADLINE_MS = 15000;

function loadService(protoDir = DEFAULT_PROTO_DIR) {
  const dir = path.join(protoDir, 'stepproof', 'v1');
  let files;
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.proto')).map((f) => path.join('stepproof', 'v1', f));
  } catch (e) {
    throw new Error(`cannot read the StepProof .proto files in ${dir}: ${e.message}`);
  }
  if (files.length === 0) throw new Error(`no .proto files in ${dir}`);
  const def = protoLoader.loadSync(files, {
    includeDirs: [protoDir], keepCase: true, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def);
  const Service = pkg.stepproof && pkg.stepproof.v1 && pkg.stepproof.v1.StepProof;
  if (!Service) throw new Error(`service stepproof.v1.StepProof not found in ${dir}`);
  return Service;
}

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

// A client of the stepproofd at `address` ("host:port"). `token` (optional)
// is sent as "authorization: Bearer <token>".
class StepProofClient {
  constructor(address, { token = '', tls = false, protoDir, deadlineMs = DEFAULT_DEADLINE_MS } = {}) {
    const Service = loadService(protoDir);
    const creds = tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
    this.address = address;
    this.client = new Service(address, creds);
    this.token = token;
    this.deadlineMs = deadlineMs;
  }

  call(method, request) {
    const md = new grpc.Metadata();
    if (this.token) md.set('authorization', `Bearer ${this.token}`);
    return new Promise((resolve, reject) => {
      this.client[method](request, md, { deadline: Date.now() + this.deadlineMs }, (err, res) => {
        if (err) {
          const code = CODE_NAMES[err.code] || err.code;
          const e = new Error(`stepproofd ${this.address}: ${method} failed: ${code}: ${err.details || err.message}`);
          e.grpcCode = code;
          reject(e);
        } else {
          resolve(res);
        }
      });
    });
  }

  // The latest signed log checkpoint note (a string).
  async latestLogCheckpoint() {
    const res = await this.call('GetLogCheckpoint', { size: 0 });
    if (!res.checkpoint) throw new Error(`stepproofd ${this.address}: GetLogCheckpoint returned no checkpoint`);
    return res.checkpoint;
  }

  // The consistency proof (Buffer[]) between log sizes size1 <= size2.
  async logConsistency(size1, size2) {
    const res = await this.call('GetLogConsistency', { size1: String(size1), size2: String(size2) });
    return res.proof;
  }

  // Records a chain anchor; returns the anchored signed checkpoint, or null
  // when the server had recorded this transaction already (ALREADY_EXISTS).
  async recordAnchor({ logSize, root, chainId, contractAddress, txHash, blockNumber, blockTimeUnixMs }) {
    const res = await this.call('RecordAnchor', {
      log_size: String(logSize), root, chain_id: String(chainId), contract_address: contractAddress,
      tx_hash: txHash, block_number: String(blockNumber), block_time_unix_ms: String(blockTimeUnixMs || 0),
    }).catch((e) => {
      if (e.grpcCode === 'ALREADY_EXISTS') return null;
      throw e;
    });
    return res === null ? null : res.checkpoint;
  }

  close() {
    this.client.close();
  }
}

module.exports = { StepProofClient, loadService, DEFAULT_PROTO_DIR };
