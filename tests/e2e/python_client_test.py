#!/usr/bin/python3
"""A client in another language drives stepproofd over gRPC.

Generates Python stubs from proto/stepproof/v1/stepproof.proto at test time
(into the build dir; see generate_stubs), starts the real stepproofd on a free
loopback port with a temporary data dir, calls Generate and GetStepProof, and
checks:
  - the stream: TraceStarted first, then StepCommitted with leaf indices
    1, 2, ..., then TraceSealed; every leaf hash is SHA-256(0x00 || record),
    computed here;
  - every step's bundle carries the very record bytes the stream delivered,
    and verifies with P1's independent Python verifier
    (clients/python/stepproof_verify.py) and the key from GetVerifierKey;
  - a bundle with one flipped salt bit fails that verifier.
The server is stopped on every exit path.

usage: python_client_test.py --bin-dir B --tests-bin-dir T --proto-dir P
                             --stub-dir S --verifier stepproof_verify.py
Run with /usr/bin/python3 (Debian's python3-grpcio, python3-grpc-tools).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time


class Server:
    """A stepproofd child process, stopped by stop() or on context exit."""

    def __init__(self, binary, data_dir, log_prefix, extra):
        self.out_path = log_prefix + ".out"
        self.err_path = log_prefix + ".err"
        self.proc = subprocess.Popen(
            [binary, "--data-dir", data_dir, "--listen", "127.0.0.1:0"] + extra,
            stdout=open(self.out_path, "w"), stderr=open(self.err_path, "w"))
        self.address = None

    def wait_listening(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.out_path) as f:
                m = re.search(r"^listening on (\S+)$", f.read(), re.M)
            if m:
                self.address = m.group(1)
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        raise RuntimeError("stepproofd did not print 'listening on' in %ds" % timeout)

    def stderr_text(self):
        with open(self.err_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok - " + what)


def generate_stubs(proto_dir, stub_dir):
    """Python stubs for stepproof.v1, generated now into stub_dir.

    Debian 12's python3-grpc-tools (1.14) bundles protoc 3.5, which predates
    proto3 `optional` (used by stepproof.proto). So the stubs come from
    Debian's protoc 3.21 with grpc_python_plugin (protobuf-compiler-grpc, the
    gRPC 1.51 that python3-grpcio matches) when both exist, else from
    `python3 -m grpc_tools.protoc` (a newer grpc_tools handles `optional`).
    """
    os.makedirs(stub_dir, exist_ok=True)
    proto = os.path.join(proto_dir, "stepproof", "v1", "stepproof.proto")
    protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
    if protoc and plugin:
        cmd = [protoc, "--plugin=protoc-gen-grpc_python=" + plugin]
    else:
        cmd = [sys.executable, "-m", "grpc_tools.protoc"]
    subprocess.run(cmd + ["-I", proto_dir, "--python_out=" + stub_dir,
                          "--grpc_python_out=" + stub_dir, proto], check=True)
    sys.path.insert(0, stub_dir)


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--bin-dir", "--tests-bin-dir", "--proto-dir", "--stub-dir", "--verifier"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()

    generate_stubs(args.proto_dir, args.stub_dir)
    import grpc  # noqa: E402  (after the stubs exist)
    from stepproof.v1 import stepproof_pb2 as pb  # noqa: E402
    from stepproof.v1 import stepproof_pb2_grpc as pb_grpc  # noqa: E402

    work = tempfile.mkdtemp(prefix="stepproof-e2e-py.")
    server = None
    try:
        stepproofd = os.path.join(args.bin_dir, "stepproofd")
        extra, max_tokens = [], 300
        server = Server(stepproofd, os.path.join(work, "data"), os.path.join(work, "s0"), [])
        if not server.wait_listening():
            if "no embedded model" not in server.stderr_text():
                raise RuntimeError("stepproofd failed:\n" + server.stderr_text())
            model = os.path.join(work, "tiny.gguf")
            subprocess.run([os.path.join(args.tests_bin_dir, "e2e_tiny_model"), model],
                           check=True)
            extra, max_tokens = ["--model", model], 40
            print("# no embedded model in this build: using a tiny random model")
            server = Server(stepproofd, os.path.join(work, "data"), os.path.join(work, "s1"),
                            extra)
            if not server.wait_listening():
                raise RuntimeError("stepproofd failed:\n" + server.stderr_text())
        check(True, "stepproofd listening on " + server.address)

        channel = grpc.insecure_channel(server.address)
        stub = pb_grpc.StepProofStub(channel)
        key = stub.GetVerifierKey(pb.GetVerifierKeyRequest(), timeout=30).verifier_key
        # name+keyid+base64(0x01 || 32-byte key): 44 characters, which may hold "+".
        check(re.fullmatch(r"[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", key) is not None,
              "GetVerifierKey: " + key)

        request = pb.GenerateRequest(prompt="What is 478 + 854?", max_tokens=max_tokens,
                                     seed=11)
        events = list(stub.Generate(request, timeout=600))
        kinds = [e.WhichOneof("event") for e in events]
        check(kinds[0] == "started" and kinds[-1] == "sealed"
              and all(k == "step" for k in kinds[1:-1]),
              "Generate streams started, %d steps, sealed" % (len(kinds) - 2))
        started, sealed = events[0].started, events[-1].sealed
        trace_id = started.trace_id
        records = [started.header_record]
        hashes = [started.header_leaf_hash]
        for i, e in enumerate(events[1:-1], start=1):
            check(e.step.leaf_index == i, "step %d has leaf index %d" % (i, e.step.leaf_index))
            records.append(e.step.record)
            hashes.append(e.step.leaf_hash)
        for i, (rec, h) in enumerate(zip(records, hashes)):
            if hashlib.sha256(b"\x00" + rec).digest() != h:
                raise AssertionError("leaf %d: hash is not SHA-256(0x00 || record)" % i)
        check(True, "every leaf hash is SHA-256(0x00 || record), computed in Python")
        check(sealed.size == len(records), "sealed size %d == leaves streamed" % sealed.size)

        for i, rec in enumerate(records):
            resp = stub.GetStepProof(pb.GetStepProofRequest(trace_id=trace_id, index=i),
                                     timeout=30)
            bundle = json.loads(resp.bundle_json)
            if base64.b64decode(bundle["encoded_record"]) != rec:
                raise AssertionError("step %d: bundle record differs from the stream" % i)
            path = os.path.join(work, "bundle%d.json" % i)
            with open(path, "w") as f:
                f.write(resp.bundle_json)
            r = subprocess.run(["/usr/bin/python3", args.verifier, "--key", key, path],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError("step %d: independent verifier says:\n%s%s"
                                     % (i, r.stdout, r.stderr))
        check(True, "all %d bundles carry the streamed records and pass the independent "
                    "Python verifier" % len(records))

        bundle = json.loads(resp.bundle_json)
        salt = bytearray.fromhex(bundle["record"]["salt"])
        salt[0] ^= 1
        bundle["record"]["salt"] = salt.hex()
        tampered = os.path.join(work, "tampered.json")
        with open(tampered, "w") as f:
            json.dump(bundle, f, indent=2)
        r = subprocess.run(["/usr/bin/python3", args.verifier, "--key", key, tampered],
                           capture_output=True, text=True)
        check(r.returncode == 1, "a bundle with one flipped salt bit fails (exit %d)"
              % r.returncode)

        channel.close()
        rc = server.stop()
        check(rc == 0, "stepproofd stopped cleanly on SIGTERM")
        server = None
        print("all checks passed")
        return 0
    finally:
        if server is not None:
            rc = server.stop()
            sys.stderr.write("--- stepproofd exited %s; stderr tail:\n%s\n"
                             % (rc, server.stderr_text()[-3000:]))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
