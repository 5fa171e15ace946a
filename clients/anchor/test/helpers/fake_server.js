'use strict';
// A stepproofd stand-in for the CLI tests: the real stepproof.v1.StepProof
// service definition (loaded from proto/ as the scripts load it) served by
// @grpc/grpc-js over a FakeLog, with an optional API token.
const grpc = require('@grpc/grpc-js');
const { loadService } = require('../../lib/stepproofd');

function startFakeServer(log, { token = '' } = {}) {
  const Service = loadService();
  const server = new grpc.Server();
  const authorized = (call, cb) => {
    if (!token) return true;
    const got = call.metadata.get('authorization')[0];
    if (got === `Bearer ${token}`) return true;
    cb({ code: grpc.status.UNAUTHENTICATED, details: 'missing or wrong bearer token' });
    return false;
  };
  const impl = {
    GetLogCheckpoint: (call, cb) => {
      const size = log.leaves.length;
      cb(null, { size: String(size), checkpoint: log.checkpointAt(size), root: log.rootAt(size), integrated_unix_ms: '0' });
    },
    GetLogConsistency: async (call, cb) => {
      const { size1, size2 } = call.request;
      if (Number(size2) > log.leaves.length || Number(size1) > Number(size2)) {
        return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'size1/size2 out of range' });
      }
      cb(null, { proof: await log.logConsistency(Number(size1), Number(size2)), checkpoint1: '', checkpoint2: '' });
    },
    RecordAnchor: async (call, cb) => {
      if (!authorized(call, cb)) return;
      const r = call.request;
      if (!log.rootAt(Number(r.log_size)).equals(r.root)) {
        return cb({ code: grpc.status.FAILED_PRECONDITION, details: 'not a root the log signed at that size' });
      }
      // As stepproofd: one record per (chain id, tx hash).
      if (log.recorded.some((x) => x.chain_id === r.chain_id && x.tx_hash === r.tx_hash)) {
        return cb({ code: grpc.status.ALREADY_EXISTS, details: 'this anchor transaction was recorded before' });
      }
      cb(null, { checkpoint: await log.recordAnchor({ ...r, logSize: BigInt(r.log_size) }) });
    },
  };
  server.addService(Service.service, impl);
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      resolve({ address: `127.0.0.1:${port}`, stop: () => new Promise((r) => server.tryShutdown(() => r())) });
    });
  });
}

module.exports = { startFakeServer };
