// Crash safety of the SQLite-backed ledger. A child process appends and seals
// traces as fast as it can (background sequencer on, short batch delay) and
// writes each trace id to a pipe only after SealTrace returned, i.e. once the
// trace was acknowledged. The parent kills it with SIGKILL at a random moment,
// then reopens the store and checks:
//   - the store opens (quick_check passes, schema intact);
//   - every acknowledged trace is there, sealed, with a final checkpoint
//     signed by the key and of the size the child built, and it reaches the
//     log (pending entries survive the crash and are integrated on reopen);
//   - every log checkpoint the parent saw after earlier restarts is still
//     stored verbatim, and a consistency proof from it to the new latest
//     checkpoint verifies: the log never forked or shrank.
// Repeated kRounds times on one database file.
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "provenance/checkpoint.h"
#include "provenance/log/ledger.h"
#include "provenance/log/sqlite_store.h"
#include "provenance/verifier.h"
#include "tests/provenance_log/ledger_test_util.h"

namespace stepproof::provenance {
namespace {

namespace fs = std::filesystem;
using testing_util::FreshDir;
using testing_util::kLogOrigin;
using testing_util::MakeHeader;
using testing_util::MakeSigner;
using testing_util::MakeStep;

constexpr int kRounds = 24;
constexpr int kStepsPerTrace = 3;

LedgerOptions Options() {
  LedgerOptions o;
  o.log_origin = kLogOrigin;
  o.sequencer.max_batch_delay = absl::Milliseconds(2);
  o.sequencer.batch_size = 8;
  return o;
}

// The child: never returns. Writes "<trace id>\n" per acknowledged trace.
[[noreturn]] void RunChild(const std::string& db, int ack_fd) {
  Signer signer = MakeSigner();
  auto store = OpenSqliteProvenanceStore(db);
  if (!store.ok()) _exit(10);
  auto ledger = Ledger::Open(std::move(*store), &signer, Options());
  if (!ledger.ok()) _exit(11);
  for (int n = 0;; ++n) {
    auto t = (*ledger)->StartTrace(MakeHeader(signer, absl::StrCat("p", n)));
    if (!t.ok()) _exit(12);
    for (int i = 0; i < kStepsPerTrace; ++i) {
      if (!(*ledger)->AppendStep(t->trace_id, MakeStep("step")).ok()) _exit(13);
    }
    if (!(*ledger)->SealTrace(t->trace_id).ok()) _exit(14);
    std::string line = t->trace_id + "\n";
    if (write(ack_fd, line.data(), line.size()) !=
        static_cast<ssize_t>(line.size())) {
      _exit(15);
    }
  }
}

// Reads everything available from a non-blocking fd.
std::string Drain(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  return out;
}

TEST(LedgerCrashTest, AcknowledgedTracesAndLogHistorySurviveSigkill) {
  const fs::path dir = FreshDir("crash");
  const std::string db = (dir / "crash.db").string();
  Signer signer = MakeSigner();
  NoteVerifier verifier = signer.verifier();
  std::mt19937 rng(20261123);
  std::uniform_int_distribution<int> delay_ms(15, 250);

  std::set<std::string> acknowledged;
  std::vector<std::string> seen_checkpoints;  // log checkpoint notes
  std::string partial;                       // an unterminated ack line
  int killed_with_traces = 0;

  for (int round = 0; round < kRounds; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      RunChild(db, fds[1]);
    }
    close(fds[1]);
    usleep(delay_ms(rng) * 1000);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status))
        << "child exited on its own with code " << WEXITSTATUS(status)
        << " in round " << round;
    std::string acks = partial + Drain(fds[0]);
    close(fds[0]);
    // A line cut by the kill was not fully acknowledged; ignore its tail.
    size_t last_nl = acks.rfind('\n');
    partial.clear();
    size_t before = acknowledged.size();
    if (last_nl != std::string::npos) {
      for (absl::string_view id :
           absl::StrSplit(absl::string_view(acks.data(), last_nl), '\n')) {
        acknowledged.insert(std::string(id));
      }
    }
    if (acknowledged.size() > before) ++killed_with_traces;

    // Restart: the store must open and the ledger must resume.
    auto store = OpenSqliteProvenanceStore(db);
    ASSERT_TRUE(store.ok()) << "round " << round << ": " << store.status();
    LedgerOptions o = Options();
    o.sequencer.background = false;
    auto ledger = Ledger::Open(std::move(*store), &signer, o);
    ASSERT_TRUE(ledger.ok()) << "round " << round << ": " << ledger.status();
    ASSERT_TRUE((*ledger)->Flush().ok());

    for (const std::string& id : acknowledged) {
      auto t = (*ledger)->GetTrace(id);
      ASSERT_TRUE(t.ok()) << "round " << round << ": acknowledged trace " << id
                          << " lost: " << t.status();
      ASSERT_EQ(t->state, TraceState::kSealed) << id;
      ASSERT_EQ(t->size, static_cast<uint64_t>(kStepsPerTrace + 1)) << id;
      auto cp = OpenCheckpoint(t->final_checkpoint, verifier);
      ASSERT_TRUE(cp.ok()) << id << ": " << cp.status();
      ASSERT_TRUE(cp->is_final());
      ASSERT_TRUE(t->log_index.has_value()) << id << " never reached the log";
    }

    auto latest = (*ledger)->LatestLogCheckpoint();
    if (!latest.ok()) {
      ASSERT_TRUE(acknowledged.empty()) << latest.status();
      continue;
    }
    ASSERT_TRUE(OpenCheckpoint(latest->note, verifier).ok());
    for (const std::string& old : seen_checkpoints) {
      auto old_cp = OpenCheckpoint(old, verifier);
      ASSERT_TRUE(old_cp.ok());
      auto stored = (*ledger)->store().GetLogCheckpoint(old_cp->size);
      ASSERT_TRUE(stored.ok()) << "checkpoint " << old_cp->size << " vanished";
      ASSERT_EQ(stored->note, old) << "checkpoint " << old_cp->size
                                   << " was rewritten";
      auto proof = (*ledger)->LogConsistency(old_cp->size, latest->size);
      ASSERT_TRUE(proof.ok()) << proof.status();
      ASSERT_TRUE(
          VerifyLogConsistency(old, latest->note, *proof, verifier).ok())
          << "round " << round << ": " << old_cp->size << " -> "
          << latest->size;
    }
    seen_checkpoints.push_back(latest->note);
  }
  std::printf("%d kills; %zu acknowledged traces; %d kills after new acks; "
              "%zu log checkpoints checked\n",
              kRounds, acknowledged.size(), killed_with_traces,
              seen_checkpoints.size());
  // The kills must have landed while work was going on.
  EXPECT_GE(killed_with_traces, kRounds / 2);
  EXPECT_GT(acknowledged.size(), 20u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace stepproof::provenance
