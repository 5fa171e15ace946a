// load_client: a load generator for stepproofd. N concurrent Generate
// streams (each a loop: one call after another) plus reader threads making
// the read calls (GetStepProof, GetTrace, ListTraces, GetLogCheckpoint) on
// traces the streams sealed, for a bounded time. Reports throughput, p50/p99
// latencies after a warm-up, errors by code (any error fails the run), and
// the server's resident memory over time from /proc/PID/status (growth after
// the warm-up beyond --max_rss_growth_mib fails the run).
//
// With --stepproofd PATH it starts the server itself (temporary data dir,
// 127.0.0.1:0, --max-concurrent-generations = --streams, plus
// --server_args), and stops it at the end; with --server ADDR --server_pid
// PID it drives a running one. docs/PERFORMANCE.md, "Service under load".
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "inference/cli/help.h"
#include "stepproof/v1/stepproof.grpc.pb.h"

ABSL_FLAG(std::string, stepproofd, "", "start this stepproofd binary and load it");
ABSL_FLAG(std::string, server_args, "--threads=2",
          "extra flags for the started server, space-separated");
ABSL_FLAG(std::string, server, "", "address of a running server (instead of --stepproofd)");
ABSL_FLAG(int, server_pid, 0, "PID of the running server, for its memory figures");
ABSL_FLAG(int, streams, 64, "concurrent Generate streams");
ABSL_FLAG(int, readers, 4, "threads making read calls");
ABSL_FLAG(int, seconds, 60, "measured time, after the warm-up");
ABSL_FLAG(int, warmup_seconds, 10, "warm-up (not counted in latencies and throughput)");
ABSL_FLAG(int, max_tokens, 128, "max_tokens of each Generate");
ABSL_FLAG(int, rss_interval_ms, 1000, "memory sampling interval");
ABSL_FLAG(int, max_rss_growth_mib, 16,
          "fail if the server's RSS at the end exceeds its RSS at the end of the warm-up by more");

namespace stepproof {
namespace {

namespace v1 = ::stepproof::v1;

int64_t StatusKib(int pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtoll(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void Deadline(grpc::ClientContext* c, absl::Duration d) {
  c->set_deadline(std::chrono::system_clock::now() +
                  std::chrono::milliseconds(absl::ToInt64Milliseconds(d)));
}

struct Stats {
  absl::Mutex mu;
  std::vector<double> generate_ms, first_event_ms, read_ms;
  int64_t generations = 0, tokens = 0, steps = 0, reads = 0;
  std::map<std::string, int64_t> errors;  // "Method CODE: message" -> count
  std::vector<std::pair<std::string, uint64_t>> sealed;  // trace id, size
};

class Server {
 public:
  // Starts the binary; "" on failure.
  std::string Start(const std::string& binary, const std::string& extra) {
    dir_ = std::filesystem::temp_directory_path() / absl::StrCat("stepproof_load_", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string port_file = (dir_ / "port").string();
    std::vector<std::string> args = {binary, "--data-dir", (dir_ / "data").string(),
                                     "--listen", "127.0.0.1:0", "--port-file", port_file,
                                     absl::StrCat("--max-concurrent-generations=",
                                                  absl::GetFlag(FLAGS_streams)),
                                     absl::StrCat("--max-tokens=", absl::GetFlag(FLAGS_max_tokens))};
    for (absl::string_view a : absl::StrSplit(extra, ' ', absl::SkipEmpty())) {
      args.emplace_back(a);
    }
    std::printf("server:");
    for (const std::string& a : args) std::printf(" %s", a.c_str());
    std::printf("\n");
    std::fflush(stdout);  // not duplicated into the child
    const std::string log = (dir_ / "server.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 600; ++i) {
      std::ifstream in(port_file);
      std::string address;
      if (std::getline(in, address) && !address.empty()) return address;
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    std::ifstream in(log);
    std::fprintf(stderr, "load_client: the server did not start:\n%s\n",
                 std::string(std::istreambuf_iterator<char>(in), {}).c_str());
    return "";
  }
  int pid() const { return pid_; }
  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      bool reaped = false;
      for (int i = 0; i < 300 && !reaped; ++i) {
        reaped = waitpid(pid_, nullptr, WNOHANG) == pid_;
        if (!reaped) absl::SleepFor(absl::Milliseconds(100));
      }
      if (!reaped) {  // still our child: not reaped, so the PID is not reused
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

 private:
  int pid_ = -1;
  std::filesystem::path dir_;
};

void GenerateLoop(v1::StepProof::Stub* stub, uint32_t seed, absl::Time measure_from,
                  absl::Time end, Stats* stats) {
  std::mt19937 rng(seed);
  while (absl::Now() < end) {
    grpc::ClientContext c;
    Deadline(&c, absl::Minutes(5));
    v1::GenerateRequest r;
    r.set_prompt(absl::StrCat("What is ", rng() % 1000, " + ", rng() % 1000, "?"));
    r.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
    r.set_seed(rng());
    const absl::Time begin = absl::Now();
    absl::Time first = absl::InfinitePast();
    auto reader = stub->Generate(&c, r);
    v1::GenerateEvent e;
    std::string trace;
    uint64_t steps = 0, tokens = 0, size = 0;
    bool sealed = false;
    while (reader->Read(&e)) {
      if (first == absl::InfinitePast()) first = absl::Now();
      if (e.has_started()) trace = e.started().trace_id();
      if (e.has_step()) ++steps;
      if (e.has_sealed()) {
        sealed = true;
        tokens = e.sealed().generated_tokens();
        size = e.sealed().size();
      }
    }
    grpc::Status s = reader->Finish();
    const absl::Time done = absl::Now();
    absl::MutexLock lock(&stats->mu);
    if (!s.ok() || !sealed) {
      ++stats->errors[absl::StrCat("Generate ", s.error_code(), ": ",
                                   s.ok() ? "no sealed event" : s.error_message())];
      continue;
    }
    stats->sealed.emplace_back(trace, size);
    if (begin >= measure_from && done <= end) {
      stats->generate_ms.push_back(absl::ToDoubleMilliseconds(done - begin));
      stats->first_event_ms.push_back(absl::ToDoubleMilliseconds(first - begin));
      ++stats->generations;
      stats->tokens += static_cast<int64_t>(tokens);
      stats->steps += static_cast<int64_t>(steps);
    }
  }
}

void ReadLoop(v1::StepProof::Stub* stub, uint32_t seed, absl::Time measure_from, absl::Time end,
              Stats* stats) {
  std::mt19937 rng(seed);
  while (absl::Now() < end) {
    std::pair<std::string, uint64_t> trace;
    {
      absl::MutexLock lock(&stats->mu);
      if (!stats->sealed.empty()) trace = stats->sealed[rng() % stats->sealed.size()];
    }
    if (trace.first.empty()) {
      absl::SleepFor(absl::Milliseconds(50));
      continue;
    }
    grpc::ClientContext c;
    Deadline(&c, absl::Seconds(60));
    grpc::Status s;
    std::string method;
    const absl::Time begin = absl::Now();
    switch (rng() % 4) {
      case 0: {
        method = "GetStepProof";
        v1::GetStepProofRequest q;
        q.set_trace_id(trace.first);
        q.set_index(rng() % trace.second);
        v1::GetStepProofResponse a;
        s = stub->GetStepProof(&c, q, &a);
        break;
      }
      case 1: {
        method = "GetTrace";
        v1::GetTraceRequest q;
        q.set_trace_id(trace.first);
        q.set_include_steps(true);
        v1::GetTraceResponse a;
        s = stub->GetTrace(&c, q, &a);
        break;
      }
      case 2: {
        method = "ListTraces";
        v1::ListTracesRequest q;
        q.set_page_size(50);
        v1::ListTracesResponse a;
        s = stub->ListTraces(&c, q, &a);
        break;
      }
      default: {
        method = "GetLogCheckpoint";
        v1::GetLogCheckpointResponse a;
        s = stub->GetLogCheckpoint(&c, v1::GetLogCheckpointRequest(), &a);
        // NOT_FOUND before the first batch is integrated is not an error.
        if (s.error_code() == grpc::StatusCode::NOT_FOUND) s = grpc::Status::OK;
        break;
      }
    }
    const absl::Time done = absl::Now();
    absl::MutexLock lock(&stats->mu);
    if (!s.ok()) {
      ++stats->errors[absl::StrCat(method, " ", s.error_code(), ": ", s.error_message())];
    } else if (begin >= measure_from && done <= end) {
      stats->read_ms.push_back(absl::ToDoubleMilliseconds(done - begin));
      ++stats->reads;
    }
  }
}

int Main() {
  Server spawned;
  std::string address = absl::GetFlag(FLAGS_server);
  int pid = absl::GetFlag(FLAGS_server_pid);
  if (!absl::GetFlag(FLAGS_stepproofd).empty()) {
    address = spawned.Start(absl::GetFlag(FLAGS_stepproofd), absl::GetFlag(FLAGS_server_args));
    if (address.empty()) return 2;
    pid = spawned.pid();
  }
  if (address.empty()) {
    std::fprintf(stderr, "load_client: give --stepproofd PATH or --server ADDR (see --help)\n");
    return 2;
  }
  const int streams = absl::GetFlag(FLAGS_streams);
  const int readers = absl::GetFlag(FLAGS_readers);
  // A few channels (separate HTTP/2 connections), streams spread over them.
  std::vector<std::unique_ptr<v1::StepProof::Stub>> stubs;
  for (int i = 0; i < 4; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("stepproof.load.channel", i);  // distinct args: distinct connections
    stubs.push_back(v1::StepProof::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args)));
  }
  const int64_t rss_before = pid > 0 ? StatusKib(pid, "VmRSS") : -1;
  const absl::Time start = absl::Now();
  const absl::Time measure_from = start + absl::Seconds(absl::GetFlag(FLAGS_warmup_seconds));
  const absl::Time end = measure_from + absl::Seconds(absl::GetFlag(FLAGS_seconds));
  Stats stats;
  std::vector<std::thread> threads;
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back(GenerateLoop, stubs[i % stubs.size()].get(), 1000 + i, measure_from, end,
                         &stats);
  }
  for (int i = 0; i < readers; ++i) {
    threads.emplace_back(ReadLoop, stubs[i % stubs.size()].get(), 5000 + i, measure_from, end,
                         &stats);
  }
  // Memory over time.
  std::vector<std::pair<double, int64_t>> rss;  // seconds since start, KiB
  int64_t rss_warm = -1;
  while (absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(absl::GetFlag(FLAGS_rss_interval_ms)));
    const int64_t kib = pid > 0 ? StatusKib(pid, "VmRSS") : -1;
    rss.emplace_back(absl::ToDoubleSeconds(absl::Now() - start), kib);
    if (rss_warm < 0 && absl::Now() >= measure_from) rss_warm = kib;
  }
  const int64_t rss_end = pid > 0 ? StatusKib(pid, "VmRSS") : -1;
  const int64_t hwm = pid > 0 ? StatusKib(pid, "VmHWM") : -1;
  const int64_t server_threads = pid > 0 ? StatusKib(pid, "Threads") : -1;
  for (std::thread& t : threads) t.join();  // the calls in flight at `end` finish
  // Idle: the streams' buffers are freed; what remains is the server's
  // lasting state (caches, the log, anything leaked).
  absl::SleepFor(absl::Seconds(3));
  const int64_t rss_idle = pid > 0 ? StatusKib(pid, "VmRSS") : -1;

  const double secs = absl::GetFlag(FLAGS_seconds);
  absl::MutexLock lock(&stats.mu);
  double load = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = -1;
    std::fclose(f);
  }
  std::printf("load_client: %d Generate streams + %d readers against %s for %d s after %d s "
              "warm-up, max_tokens %d (load average at the end %.1f)\n",
              streams, readers, address.c_str(), absl::GetFlag(FLAGS_seconds),
              absl::GetFlag(FLAGS_warmup_seconds), absl::GetFlag(FLAGS_max_tokens), load);
  std::printf("generations: %lld (%.2f/s), %.0f generated tokens/s, %.1f steps/s\n",
              static_cast<long long>(stats.generations), stats.generations / secs,
              stats.tokens / secs, stats.steps / secs);
  std::printf("Generate latency ms: p50 %.0f  p99 %.0f  (first event p50 %.0f  p99 %.0f)\n",
              Percentile(stats.generate_ms, 0.5), Percentile(stats.generate_ms, 0.99),
              Percentile(stats.first_event_ms, 0.5), Percentile(stats.first_event_ms, 0.99));
  std::printf("read calls: %lld (%.0f/s), latency ms p50 %.2f  p99 %.2f\n",
              static_cast<long long>(stats.reads), stats.reads / secs,
              Percentile(stats.read_ms, 0.5), Percentile(stats.read_ms, 0.99));
  int64_t errors = 0;
  for (const auto& [what, n] : stats.errors) {
    errors += n;
    std::printf("  error x%lld: %s\n", static_cast<long long>(n), what.c_str());
  }
  std::printf("errors: %lld\n", static_cast<long long>(errors));
  std::string series;
  for (size_t i = 0; i < rss.size(); i += std::max<size_t>(1, rss.size() / 20)) {
    absl::StrAppend(&series, absl::StrFormat(" %.0fs:%.1f", rss[i].first, rss[i].second / 1024.0));
  }
  std::printf("server RSS MiB over time:%s\n", series.c_str());
  std::printf("server RSS: before the run %.1f MiB, end of warm-up %.1f MiB, end %.1f MiB, "
              "growth %+.1f MiB, peak (VmHWM) %.1f MiB, threads %lld; idle 3 s after the run "
              "%.1f MiB\n",
              rss_before / 1024.0, rss_warm / 1024.0, rss_end / 1024.0,
              (rss_end - rss_warm) / 1024.0, hwm / 1024.0, static_cast<long long>(server_threads),
              rss_idle / 1024.0);
  bool ok = errors == 0 && stats.generations > 0;
  if (pid > 0 && rss_end - rss_warm > absl::GetFlag(FLAGS_max_rss_growth_mib) * 1024) {
    std::printf("FAIL: RSS grew by more than %d MiB after the warm-up\n",
                absl::GetFlag(FLAGS_max_rss_growth_mib));
    ok = false;
  }
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace stepproof

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Load generator for stepproofd: concurrent Generate streams plus read calls.\n"
      "  load_client --stepproofd build/bin/stepproofd [--streams 64 --seconds 60]\n"
      "  load_client --server 127.0.0.1:7700 --server_pid PID");
  if (stepproof::AnswerHelp(argc, argv, "load_client.")) return 0;
  absl::ParseCommandLine(argc, argv);
  return stepproof::Main();
}
