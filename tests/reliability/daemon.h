// Shared by the reliability tests: a real `stepproofd` child process (from
// $STEPPROOF_BIN_DIR) with its stdout and stderr captured in files, a
// temporary folder removed with everything in it, the process's resident
// memory (/proc/PID/status), and small gRPC helpers.
//
// Ownership: a Daemon owns its child; the destructor kills it (SIGKILL) and
// reaps it if it is still running. Only the PID this object started is ever
// signalled. Thread-safety: none (one test thread drives a Daemon).
#ifndef STEPPROOF_TESTS_RELIABILITY_DAEMON_H_
#define STEPPROOF_TESTS_RELIABILITY_DAEMON_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "stepproof/v1/stepproof.grpc.pb.h"

namespace stepproof::reliability {

namespace v1 = ::stepproof::v1;

// A fresh, empty temporary folder, removed when the object goes away.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() /
              absl::StrCat("stepproof_reliability_", getpid(), "_", name)) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

inline std::string StepproofdBinary() {
  const char* dir = std::getenv("STEPPROOF_BIN_DIR");
  return absl::StrCat(dir != nullptr ? dir : "build/bin", "/stepproofd");
}

// VmRSS (or another "Name:  N kB" field) of /proc/PID/status in KiB; -1 if
// the process or the field is gone.
inline int64_t ProcStatusKib(pid_t pid, const std::string& field = "VmRSS") {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtoll(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

class Daemon {
 public:
  // Starts `stepproofd args...` with stdout/stderr going to files in `dir`
  // named by `tag`.
  Daemon(const std::string& dir, const std::string& tag, const std::vector<std::string>& args)
      : out_(absl::StrCat(dir, "/", tag, ".stdout")), err_(absl::StrCat(dir, "/", tag, ".stderr")) {
    pid_ = fork();
    if (pid_ == 0) {
      int out = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(out, 1);
      dup2(err, 2);
      std::vector<std::string> all = {StepproofdBinary()};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (std::string& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() { Kill(); }

  pid_t pid() const { return pid_; }
  std::string out() const { return ReadFile(out_); }
  std::string err() const { return ReadFile(err_); }

  // The address of the "listening on HOST:PORT" line, or "" when the process
  // exited or `timeout` passed first.
  std::string WaitListening(absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    static const std::regex kLine("listening on (127\\.0\\.0\\.1:[0-9]+)\n");
    while (absl::Now() < end) {
      std::smatch m;
      const std::string text = out();
      if (std::regex_search(text, m, kLine)) return m[1];
      if (Exited(absl::ZeroDuration()).has_value()) return "";
      absl::SleepFor(absl::Milliseconds(10));
    }
    return "";
  }

  // The exit code once the process ended within `timeout` (-signal if it was
  // killed by one).
  std::optional<int> Exited(absl::Duration timeout) {
    if (exit_code_.has_value()) return exit_code_;
    const absl::Time end = absl::Now() + timeout;
    do {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        return exit_code_;
      }
      absl::SleepFor(absl::Milliseconds(5));
    } while (absl::Now() < end);
    return std::nullopt;
  }

  bool Running() { return !Exited(absl::ZeroDuration()).has_value(); }

  // SIGKILL and reap (no-op once exited).
  void Kill() {
    if (pid_ > 0 && !exit_code_.has_value()) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
      exit_code_ = -SIGKILL;
    }
  }

  void Signal(int sig) {
    if (pid_ > 0 && !exit_code_.has_value()) kill(pid_, sig);
  }

  int64_t RssKib() const { return ProcStatusKib(pid_); }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

inline std::string VerifierKeyFromStdout(const std::string& out) {
  std::smatch m;
  static const std::regex kLine("verifier key: (\\S+)\n");
  return std::regex_search(out, m, kLine) ? std::string(m[1]) : "";
}

inline std::unique_ptr<v1::StepProof::Stub> Connect(const std::string& address) {
  return v1::StepProof::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

inline void SetDeadline(grpc::ClientContext* context, absl::Duration d) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(d)));
}

// One Generate call read to its end.
struct GenerateOutcome {
  grpc::Status status;
  std::vector<v1::GenerateEvent> events;
  bool sealed() const { return !events.empty() && events.back().has_sealed(); }
};

inline GenerateOutcome RunGenerate(v1::StepProof::Stub* stub, const v1::GenerateRequest& request,
                                   absl::Duration deadline = absl::Seconds(30),
                                   const std::string& token = "") {
  grpc::ClientContext context;
  SetDeadline(&context, deadline);
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  GenerateOutcome outcome;
  auto reader = stub->Generate(&context, request);
  v1::GenerateEvent event;
  while (reader->Read(&event)) outcome.events.push_back(event);
  outcome.status = reader->Finish();
  return outcome;
}

}  // namespace stepproof::reliability

#endif  // STEPPROOF_TESTS_RELIABILITY_DAEMON_H_
