// The stepproofd binary: start-up output, the port file, key creation and
// reuse, persistence across a restart, SIGTERM/SIGINT shutdown, and the
// start-up refusals (non-loopback without TLS, --device cuda, bad flags).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/cuda/device.h"
#include "stepproof/v1/stepproof.grpc.pb.h"
#include "tests/reliability/daemon.h"
#include "tests/services/test_env.h"

namespace stepproof::service {
namespace {

namespace v1 = ::stepproof::v1;
using ::testing::HasSubstr;

// The child process and gRPC helpers are the reliability tests' (one copy).
using ::stepproof::reliability::Connect;
using ::stepproof::reliability::Daemon;
using ::stepproof::reliability::VerifierKeyFromStdout;

TEST(StepproofdTest, ServesThenStopsCleanlyAndKeepsItsStateAcrossRestarts) {
  auto dir_holder = testing::FreshDir("daemon");
  const testing::TempDir& dir = *dir_holder;
  const std::string model = testing::WriteTinyModel(dir, 1, 512);
  const std::string data = (dir / "data").string();
  const std::string port_file = (dir / "port").string();
  const std::vector<std::string> args = {"--data-dir", data, "--model", model, "--listen",
                                         "127.0.0.1:0", "--port-file=" + port_file,
                                         "--threads", "1", "--max-tokens", "32",
                                         "--log-origin", "daemon.test/log"};
  std::string vkey;
  std::string trace_id;
  {
    Daemon d(dir.string(), "run1", args);
    const std::string address = d.WaitListening(absl::Seconds(60));
    ASSERT_FALSE(address.empty()) << d.out() << d.err();
    EXPECT_EQ(testing::ReadFile(port_file), address + "\n");
    EXPECT_THAT(d.out(), HasSubstr("created signing key " + data + "/signing-key.pem"));
    vkey = VerifierKeyFromStdout(d.out());
    EXPECT_TRUE(absl::StartsWith(vkey, "daemon.test/log+")) << d.out();
    struct stat st {};
    ASSERT_EQ(stat((data + "/signing-key.pem").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(stat(data.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);

    auto stub = Connect(address);
    grpc::ClientContext kc;
    v1::GetVerifierKeyResponse key;
    ASSERT_TRUE(stub->GetVerifierKey(&kc, v1::GetVerifierKeyRequest(), &key).ok());
    EXPECT_EQ(key.verifier_key(), vkey);

    grpc::ClientContext gc;
    v1::GenerateRequest request;
    request.set_prompt("What is 2+2? DAEMON-SECRET");
    request.set_seed(1);
    auto reader = stub->Generate(&gc, request);
    v1::GenerateEvent event;
    std::vector<v1::GenerateEvent> events;
    while (reader->Read(&event)) events.push_back(event);
    ASSERT_TRUE(reader->Finish().ok());
    ASSERT_TRUE(events.back().has_sealed());
    trace_id = events.front().started().trace_id();

    // The client's connection stays open: shutdown must not wait for it.
    const absl::Time stop = absl::Now();
    d.Signal(SIGTERM);
    std::optional<int> code = d.Exited(absl::Seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << d.err();
    EXPECT_LT(absl::Now() - stop, absl::Seconds(4)) << "the grace period is 5 s";
    EXPECT_THAT(d.err(), HasSubstr("event=server.stopped"));
    EXPECT_THAT(d.err(), HasSubstr("event=generate.sealed"));
    EXPECT_FALSE(absl::StrContains(d.err(), "DAEMON-SECRET"));
  }
  {
    Daemon d(dir.string(), "run2", args);
    const std::string address = d.WaitListening(absl::Seconds(60));
    ASSERT_FALSE(address.empty()) << d.out() << d.err();
    EXPECT_FALSE(absl::StrContains(d.out(), "created signing key"));
    EXPECT_EQ(VerifierKeyFromStdout(d.out()), vkey);
    auto stub = Connect(address);
    grpc::ClientContext lc;
    v1::ListTracesResponse list;
    ASSERT_TRUE(stub->ListTraces(&lc, v1::ListTracesRequest(), &list).ok());
    ASSERT_EQ(list.traces_size(), 1);
    EXPECT_EQ(list.traces(0).trace_id(), trace_id);
    EXPECT_EQ(list.traces(0).state(), v1::TRACE_STATE_SEALED);
    // Shutdown flushed the sequencer: the trace is in the log.
    EXPECT_TRUE(list.traces(0).has_log_index());
    grpc::ClientContext cc;
    v1::GetLogCheckpointResponse checkpoint;
    ASSERT_TRUE(stub->GetLogCheckpoint(&cc, v1::GetLogCheckpointRequest(), &checkpoint).ok());
    EXPECT_EQ(checkpoint.size(), 1u);
    d.Signal(SIGINT);
    std::optional<int> code = d.Exited(absl::Seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << d.err();
  }
}

struct Refusal {
  std::vector<std::string> args;
  std::string message;
};

TEST(StepproofdTest, RefusesBadSetupsWithAMessageAndNonZeroExit) {
  auto dir_holder = testing::FreshDir("daemon_refusals");
  const testing::TempDir& dir = *dir_holder;
  const std::string model = testing::WriteTinyModel(dir, 1, 512);
  const std::string data = (dir / "data").string();
  std::vector<Refusal> refusals = {
      {{"--listen", "0.0.0.0:0"}, "without TLS"},
      {{"--device", "tpu"}, "--device"},
      {{"--max-tokens", "0"}, "--max-tokens"},
      {{"--max-prompt-bytes", "2000000"}, "--max-prompt-bytes"},
      {{"--tls-cert", "x.pem"}, "--tls-key"},
      {{"--api-token-file", (dir / "missing-token").string()}, "--api-token-file"},
      {{"--log-origin", "bad origin"}, "--log-origin"},
      {{"--model", (dir / "missing.gguf").string()}, "missing.gguf"},
      {{"stray-argument"}, "stray-argument"},
  };
  // Without a usable GPU (or a CUDA build) --device cuda is refused, with the
  // probe's reason; auto falls back to the CPU (the other tests).
  if (!inference::cuda::ProbeCudaDevice().ok()) refusals.push_back({{"--device", "cuda"}, "no CUDA backend"});
  for (const Refusal& r : refusals) {
    std::vector<std::string> args = {"--data-dir", data, "--listen", "127.0.0.1:0"};
    if (std::find(r.args.begin(), r.args.end(), "--model") == r.args.end()) {
      args.push_back("--model");
      args.push_back(model);
    }
    args.insert(args.end(), r.args.begin(), r.args.end());
    Daemon d(dir.string(), "run3", args);
    std::optional<int> code = d.Exited(absl::Seconds(60));
    ASSERT_TRUE(code.has_value()) << r.message;
    EXPECT_NE(*code, 0) << r.message;
    EXPECT_THAT(d.err(), HasSubstr(r.message)) << r.message;
    EXPECT_FALSE(absl::StrContains(d.out(), "listening on")) << r.message;
  }
}

TEST(StepproofdTest, HelpListsTheFlags) {
  auto dir_holder = testing::FreshDir("daemon_help");
  const testing::TempDir& dir = *dir_holder;
  Daemon d(dir.string(), "run4", {"--help"});
  const std::optional<int> code = d.Exited(absl::Seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << "asking for help is not an error";
  const std::string help = d.out() + d.err();
  for (const char* flag : {"data_dir", "listen", "model", "device", "log_origin", "threads",
                           "max_concurrent_generations", "max_prompt_bytes", "max_tokens",
                           "api_token_file", "tls_cert", "tls_key", "tls_client_ca", "insecure",
                           "port_file"}) {
    EXPECT_THAT(help, HasSubstr(absl::StrCat("--", flag, " "))) << flag;
  }
}

TEST(StepproofdTest, WithoutModelFlagUsesTheEmbeddedModelOrSaysToPassOne) {
  auto dir_holder = testing::FreshDir("daemon_embedded");
  const testing::TempDir& dir = *dir_holder;
  const std::string data = (dir / "data").string();
  Daemon d(dir.string(), "run5", {"--data-dir", data, "--listen", "127.0.0.1:0", "--threads", "1"});
  const std::string address = d.WaitListening(absl::Seconds(120));
  if (address.empty()) {
    // A build without models/stepproof-arith.gguf.
    ASSERT_TRUE(d.Exited(absl::Seconds(10)).has_value());
    EXPECT_THAT(d.err(), HasSubstr("--model"));
    return;
  }
  // The embedded model was written out under its SHA-256.
  int models = 0;
  for (auto& e : std::filesystem::directory_iterator(data + "/models")) {
    EXPECT_TRUE(std::regex_match(e.path().filename().string(), std::regex("[0-9a-f]{64}\\.gguf")));
    ++models;
  }
  EXPECT_EQ(models, 1);
  d.Signal(SIGTERM);
  std::optional<int> code = d.Exited(absl::Seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace stepproof::service
