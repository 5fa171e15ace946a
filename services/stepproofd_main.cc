// stepproofd: the StepProof server. Flags are read here and only here; every
// component is built from them and passed in (STYLE.md).
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "inference/backend.h"
#include "inference/cli/help.h"
#include "inference/cuda/cuda_backend.h"
#include "provenance/log/ledger.h"
#include "provenance/log/sqlite_store.h"
#include "provenance/signer.h"
#include "services/auth.h"
#include "services/config.h"
#include "services/embedded_model.h"
#include "services/event_log.h"
#include "services/generation.h"
#include "services/grpc_server.h"
#include "services/model_file.h"
#include "services/model_identity.h"
#include "services/stepproof_service.h"

ABSL_FLAG(std::string, data_dir, "./stepproof-data",
          "Folder for the SQLite store (stepproof.db), the signing key "
          "(signing-key.pem, mode 0600) and the written-out embedded model "
          "(models/<sha256>.gguf). Created (0700) if missing.");
ABSL_FLAG(std::string, listen, "127.0.0.1:7700",
          "host:port to serve gRPC on; port 0 picks a free port. The bound "
          "address is printed as 'listening on HOST:PORT'.");
ABSL_FLAG(std::string, port_file, "",
          "If set, write the bound HOST:PORT (one line) to this file once "
          "listening.");
ABSL_FLAG(std::string, model, "",
          "GGUF model file to serve. Default: the model embedded in this "
          "binary (models/stepproof-arith.gguf).");
ABSL_FLAG(std::string, device, "auto",
          "auto | cpu | cuda. auto = cuda when this build has a CUDA backend "
          "and a GPU, else cpu.");
ABSL_FLAG(std::string, log_origin, "stepproof.local/log",
          "Origin line of the global log; trace checkpoints use "
          "<origin>/trace/<id>. Also the signing key's name.");
ABSL_FLAG(int32_t, threads, 0, "Engine threads; 0 = all cores.");
ABSL_FLAG(int32_t, max_concurrent_generations, 4,
          "Generate calls in flight at once (the rest get RESOURCE_EXHAUSTED).");
ABSL_FLAG(int64_t, max_prompt_bytes, 64 * 1024,
          "Largest prompt accepted, in bytes (at most 1048576).");
ABSL_FLAG(int32_t, max_tokens, 1024,
          "Default and largest generated-token budget per request.");
ABSL_FLAG(int32_t, max_pending_steps, 256,
          "Steps of one generation that may wait to be sent to a client that "
          "does not read its stream; one more stops that generation "
          "(RESOURCE_EXHAUSTED). The engine never waits for a client.");
ABSL_FLAG(int32_t, max_event_wait_seconds, 30,
          "Longest one stream event may wait to be sent before its "
          "generation is stopped and the call cancelled (RESOURCE_EXHAUSTED).");
ABSL_FLAG(std::string, api_token_file, "",
          "File holding an API token. When set, Generate and RecordAnchor "
          "need metadata 'authorization: Bearer <token>'; reads stay public.");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate (enables TLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require and verify client certificates (mTLS).");
ABSL_FLAG(bool, insecure, false,
          "Allow a non-loopback --listen address without TLS.");
ABSL_FLAG(int32_t, shutdown_grace_seconds, 5,
          "On SIGTERM/SIGINT, how long running generations may finish "
          "before they are cancelled (and sealed).");

namespace stepproof::service {
namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// Abseil flag names are identifiers; accept the documented dashed spelling
// (--data-dir) by rewriting dashes in the name part of "--name[=value]".
std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (a.size() < 2 || a[0] != '-') continue;
    const size_t start = a[1] == '-' ? 2 : 1;
    const size_t end = std::min(a.find('='), a.size());
    for (size_t j = start; j < end; ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  return args;
}

int Fail(int code, const absl::Status& status) {
  std::fprintf(stderr, "stepproofd: %s\n", std::string(status.message()).c_str());
  return code;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

// --device cuda: the GPU backend, or an error saying why there is none.
// --device auto: the GPU backend when it opens, else (no CUDA build, no
// device, a model it does not run yet) the CPU, logging why.
absl::StatusOr<std::unique_ptr<inference::Backend>> OpenBackend(const ServerConfig& config,
                                                                const std::string& model_path,
                                                                EventLog& log) {
  if (config.device != DeviceChoice::kCpu) {
    inference::cuda::CudaBackendOptions gpu_options;
    gpu_options.slots = config.max_concurrent_generations;
    absl::StatusOr<std::unique_ptr<inference::Backend>> gpu =
        inference::cuda::OpenCudaBackend(model_path, gpu_options);
    if (gpu.ok()) return gpu;
    if (config.device == DeviceChoice::kCuda) {
      return absl::Status(gpu.status().code(),
                          absl::StrCat("--device cuda: no CUDA backend: ", gpu.status().message(),
                                       " (use --device cpu or auto)"));
    }
    log.Log("backend.cpu_fallback", {{"reason", std::string(gpu.status().message())}});
  }
  inference::CpuBackendOptions cpu_options;
  cpu_options.threads = config.threads;
  return inference::OpenCpuBackend(model_path, cpu_options);
}

int Run(const ServerConfig& config, absl::Duration grace, const sigset_t& signals) {
  if (absl::Status s = ValidateServerConfig(config); !s.ok()) return Fail(kExitUsage, s);
  if (absl::Status s = MakeDirectories(config.data_dir, 0700); !s.ok()) {
    return Fail(kExitRuntime, s);
  }
  EventLog log = EventLog::Stderr();

  // The model file: the embedded one, written out once, or --model.
  std::string model_path = config.model;
  std::optional<merkle::Hash> model_digest;
  if (model_path.empty()) {
    if (EmbeddedModel().empty()) {
      return Fail(kExitUsage, absl::FailedPreconditionError(
                                  "this build has no embedded model (models/stepproof-arith.gguf "
                                  "was missing at build time): pass --model PATH.gguf"));
    }
    absl::StatusOr<MaterializedModel> written =
        MaterializeModel(absl::StrCat(config.data_dir, "/models"), EmbeddedModel());
    if (!written.ok()) return Fail(kExitRuntime, written.status());
    model_path = written->path;
    model_digest = written->digest;
  }
  absl::StatusOr<ModelIdentity> identity = ReadModelIdentity(model_path, model_digest);
  if (!identity.ok()) return Fail(kExitRuntime, identity.status());
  absl::StatusOr<std::unique_ptr<inference::Backend>> backend = OpenBackend(config, model_path, log);
  if (!backend.ok()) return Fail(kExitRuntime, backend.status());

  // The signing key (created on first start).
  const std::string key_path = absl::StrCat(config.data_dir, "/signing-key.pem");
  bool created = false;
  absl::StatusOr<provenance::Signer> signer =
      provenance::Signer::LoadOrCreate(key_path, config.log_origin, &created);
  if (!signer.ok()) return Fail(kExitRuntime, signer.status());
  if (created) std::printf("created signing key %s\n", key_path.c_str());
  std::printf("verifier key: %s\n", signer->verifier_key().c_str());
  std::fflush(stdout);

  // The store and the ledger.
  absl::StatusOr<std::unique_ptr<provenance::ProvenanceStore>> store =
      provenance::OpenSqliteProvenanceStore(absl::StrCat(config.data_dir, "/stepproof.db"));
  if (!store.ok()) return Fail(kExitRuntime, store.status());
  provenance::LedgerOptions ledger_options;
  ledger_options.log_origin = config.log_origin;
  absl::StatusOr<std::unique_ptr<provenance::Ledger>> ledger =
      provenance::Ledger::Open(*std::move(store), &*signer, ledger_options);
  if (!ledger.ok()) return Fail(kExitRuntime, ledger.status());

  BearerAuth auth;
  if (!config.api_token_file.empty()) {
    absl::StatusOr<BearerAuth> from_file = BearerAuth::FromFile(config.api_token_file);
    if (!from_file.ok()) return Fail(kExitUsage, from_file.status());
    auth = *std::move(from_file);
  }

  TraceGeneratorOptions generator_options;
  generator_options.max_concurrent = config.max_concurrent_generations;
  generator_options.max_prompt_bytes = config.max_prompt_bytes;
  generator_options.max_tokens = config.max_tokens;
  generator_options.max_pending_steps = config.max_pending_steps;
  generator_options.max_event_wait = absl::Seconds(config.max_event_wait_seconds);
  TraceGenerator generator(backend->get(), ledger->get(), &*signer, *identity,
                           generator_options);
  StepProofService service(&generator, ledger->get(), &*signer, config.log_origin,
                           std::move(auth), &log);

  GrpcServerOptions server_options;
  server_options.listen = config.listen;
  server_options.tls_cert = config.tls_cert;
  server_options.tls_key = config.tls_key;
  server_options.tls_client_ca = config.tls_client_ca;
  server_options.insecure = config.insecure;
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(server_options, &service);
  if (!server.ok()) return Fail(kExitRuntime, server.status());

  const inference::DeviceInfo device = (*backend)->device();
  log.Log("server.started",
          {{"address", (*server)->address()},
           {"tls", (*server)->tls() ? "true" : "false"},
           {"model", identity->name},
           {"model_digest", merkle::ToHex(identity->model_digest)},
           {"backend", device.backend},
           {"device", device.device},
           {"log_origin", config.log_origin},
           {"key_id", absl::StrCat(absl::Hex(signer->key_id(), absl::kZeroPad8))},
           {"auth", config.api_token_file.empty() ? "none" : "bearer"}});
  std::printf("listening on %s\n", (*server)->address().c_str());
  std::fflush(stdout);
  if (!config.port_file.empty()) {
    if (absl::Status s = WriteFileAtomically(config.port_file, (*server)->address() + "\n");
        !s.ok()) {
      log.Log("server.port_file_error", {{"message", std::string(s.message())}});
    }
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  log.Log("server.stopping", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"},
                              {"in_flight", absl::StrCat(generator.in_flight())}});
  // Running generations get `grace` to finish, then are cancelled (and
  // sealed). Only then is the gRPC server shut down, with a short deadline:
  // gRPC's own shutdown waits for idle client connections to close, which
  // would make every shutdown last the whole deadline.
  (*server)->SetNotServing();
  if (!generator.Drain(grace, absl::Seconds(10))) {
    log.Log("server.drain_timeout", {{"in_flight", absl::StrCat(generator.in_flight())}});
  }
  (*server)->Shutdown(absl::Milliseconds(200));
  absl::Status flushed = (*ledger)->Flush();
  if (!flushed.ok()) {
    log.Log("server.flush_error", {{"message", std::string(flushed.message())}});
  }
  ledger->reset();  // stops the sequencer, closes the store
  log.Log("server.stopped", {});
  return flushed.ok() ? 0 : kExitRuntime;
}

}  // namespace
}  // namespace stepproof::service

int main(int argc, char** argv) {
  // Block the stop signals before any thread exists, so every thread
  // inherits the mask and only the sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::SetProgramUsageMessage(
      "the StepProof server: verifiable reasoning traces over gRPC.\n"
      "Usage: stepproofd [flags]   (flag names may be written with dashes:\n"
      "--data-dir, --max-tokens, ...). With no flags it serves the embedded\n"
      "model on 127.0.0.1:7700 from ./stepproof-data. See docs/SERVICE.md.");
  if (stepproof::AnswerHelp(argc, argv, "stepproofd_main.")) return 0;
  std::vector<std::string> args = stepproof::service::NormalizeFlagNames(argc, argv);
  std::vector<char*> arg_pointers;
  for (std::string& a : args) arg_pointers.push_back(a.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(arg_pointers.size()), arg_pointers.data());
  if (positional.size() > 1) {
    std::fprintf(stderr, "stepproofd: unexpected argument '%s' (see --help)\n", positional[1]);
    return 2;
  }

  stepproof::service::ServerConfig config;
  config.data_dir = absl::GetFlag(FLAGS_data_dir);
  config.listen = absl::GetFlag(FLAGS_listen);
  config.port_file = absl::GetFlag(FLAGS_port_file);
  config.model = absl::GetFlag(FLAGS_model);
  absl::StatusOr<stepproof::service::DeviceChoice> device =
      stepproof::service::ParseDeviceChoice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) {
    std::fprintf(stderr, "stepproofd: %s\n", std::string(device.status().message()).c_str());
    return 2;
  }
  config.device = *device;
  config.log_origin = absl::GetFlag(FLAGS_log_origin);
  config.threads = absl::GetFlag(FLAGS_threads);
  config.max_concurrent_generations = absl::GetFlag(FLAGS_max_concurrent_generations);
  config.max_prompt_bytes = absl::GetFlag(FLAGS_max_prompt_bytes);
  config.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  config.max_pending_steps = absl::GetFlag(FLAGS_max_pending_steps);
  config.max_event_wait_seconds = absl::GetFlag(FLAGS_max_event_wait_seconds);
  config.api_token_file = absl::GetFlag(FLAGS_api_token_file);
  config.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  config.tls_key = absl::GetFlag(FLAGS_tls_key);
  config.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  config.insecure = absl::GetFlag(FLAGS_insecure);
  const int grace = absl::GetFlag(FLAGS_shutdown_grace_seconds);
  if (grace < 0 || grace > 3600) {
    std::fprintf(stderr, "stepproofd: --shutdown-grace-seconds %d is not in [0, 3600]\n", grace);
    return 2;
  }
  return stepproof::service::Run(config, absl::Seconds(grace), signals);
}
