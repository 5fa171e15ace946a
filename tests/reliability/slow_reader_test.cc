// Clients that open Generate streams and never read them (findings R-6 and
// R-7 in docs/RELIABILITY.md), against the real stepproofd (embedded model).
//
// A stalled stream is made with a raw HTTP/2 client over a TCP socket: it
// announces a stream flow-control window just large enough for the
// `started` event, sends one Generate request and never reads again (and
// never opens the window). The server can then send `started` but blocks
// in its write of the first step event, which is what a client that stops
// reading does to a real server once its window is full. The checks are on
// behaviour, not on timing:
//   - while such streams are blocked (their traces stay OPEN), another
//     client's generations all complete and seal: the engine does not wait
//     for a stream (before the fix, the engine's lock was held during the
//     blocked write and every later generation waited behind it);
//   - with --max-pending-steps, a stalled generation is stopped once that
//     many steps wait to be sent: its trace is sealed and the server logs
//     RESOURCE_EXHAUSTED naming the reason; with --max-event-wait-seconds
//     the same happens to a stream blocked on one event, and its slot comes
//     back.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/reliability/daemon.h"

namespace stepproof::reliability {
namespace {

using ::testing::HasSubstr;

constexpr int kMaxConcurrent = 8;
constexpr int kStalled = 3;

v1::GenerateRequest Request(uint64_t seed) {
  v1::GenerateRequest r;
  r.set_prompt("What is 4 + 5?");
  r.set_max_tokens(128);
  r.set_seed(seed);
  r.mutable_sampling()->set_greedy(true);
  return r;
}

// ---- A raw HTTP/2 client that stops reading --------------------------------

std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  const uint32_t n = static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8) f.push_back(static_cast<char>(stream >> shift));
  return f + payload;
}

// HPACK "literal header field without indexing, new name", no Huffman.
// REQUIRES: name and value shorter than 127 bytes.
std::string Literal(const std::string& name, const std::string& value) {
  std::string out(1, '\0');
  out.push_back(static_cast<char>(name.size()));
  out += name;
  out.push_back(static_cast<char>(value.size()));
  out += value;
  return out;
}

bool SendAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool RecvAll(int fd, char* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = recv(fd, out + done, n - done, 0);
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

// One connection with one Generate stream whose window holds `window`
// bytes. The socket stays open (and unread) until the object goes away.
class StalledStream {
 public:
  StalledStream(const std::string& address, const v1::GenerateRequest& request, uint32_t window) {
    const size_t colon = address.rfind(':');
    int port = 0;
    if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) return;
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return;
    // Preface and SETTINGS: INITIAL_WINDOW_SIZE (0x4) = window, no push.
    std::string settings;
    auto setting = [&settings](uint16_t id, uint32_t value) {
      settings.push_back(static_cast<char>(id >> 8));
      settings.push_back(static_cast<char>(id));
      for (int shift = 24; shift >= 0; shift -= 8) settings.push_back(static_cast<char>(value >> shift));
    };
    setting(0x2, 0);
    setting(0x4, window);
    if (!SendAll(fd_, std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + Frame(0x4, 0, 0, settings))) return;
    // Read until the server's own SETTINGS, and acknowledge it (a peer that
    // never does may be dropped, which is not what is tested here).
    for (int frames = 0; frames < 16; ++frames) {
      char head[9];
      if (!RecvAll(fd_, head, sizeof(head))) return;
      const uint32_t len = (static_cast<uint8_t>(head[0]) << 16) | (static_cast<uint8_t>(head[1]) << 8) |
                           static_cast<uint8_t>(head[2]);
      std::string payload(len, '\0');
      if (len > 0 && !RecvAll(fd_, payload.data(), len)) return;
      if (head[3] == 0x4 && (head[4] & 0x1) == 0) {
        if (!SendAll(fd_, Frame(0x4, 0x1, 0, ""))) return;
        break;
      }
    }
    std::string headers = Literal(":method", "POST") + Literal(":scheme", "http") +
                          Literal(":path", "/stepproof.v1.StepProof/Generate") +
                          Literal(":authority", address) + Literal("content-type", "application/grpc") +
                          Literal("te", "trailers");
    std::string message = request.SerializeAsString();
    std::string grpc_frame(1, '\0');
    const uint32_t n = static_cast<uint32_t>(message.size());
    for (int shift = 24; shift >= 0; shift -= 8) grpc_frame.push_back(static_cast<char>(n >> shift));
    grpc_frame += message;
    ok_ = SendAll(fd_, Frame(0x1, 0x4, 1, headers) + Frame(0x0, 0x1, 1, grpc_frame));
  }
  StalledStream(const StalledStream&) = delete;
  StalledStream& operator=(const StalledStream&) = delete;
  ~StalledStream() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return ok_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

// ---- The fixture --------------------------------------------------------------

class SlowReaderTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"--data-dir", *dir_ / "data", "--listen", "127.0.0.1:0",
                                     "--threads", "1", "--max-tokens", "128",
                                     "--max-concurrent-generations", absl::StrCat(kMaxConcurrent)};
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<Daemon>(dir_->path().string(), "server", args);
    address_ = daemon_->WaitListening(absl::Seconds(60));
    ASSERT_FALSE(address_.empty()) << daemon_->out() << daemon_->err();
    stub_ = Connect(address_);
  }

  // A window that lets the `started` event through but not the first step,
  // measured once on a server of its own with default limits: a normal call
  // with the same request (greedy, same seed: the same steps; trace ids,
  // keys and times have fixed-size encodings, so the events of a later call
  // differ in content, not in size by more than a few bytes). 5 bytes of
  // gRPC framing per message.
  static uint32_t WindowForStartedOnly() {
    static uint32_t window = [] {
      TempDir dir("slow_reader_measure");
      Daemon daemon(dir.path().string(), "measure",
                    {"--data-dir", dir / "data", "--listen", "127.0.0.1:0", "--threads", "1",
                     "--max-tokens", "128"});
      const std::string address = daemon.WaitListening(absl::Seconds(60));
      if (address.empty()) return 0u;
      auto stub = Connect(address);
      GenerateOutcome o = RunGenerate(stub.get(), Request(1));
      EXPECT_TRUE(o.status.ok()) << o.status.error_message();
      // started, >= 4 steps, sealed: the backlog test needs 4 steps.
      EXPECT_GE(o.events.size(), 6u) << "the test needs a generation of at least four steps";
      if (o.events.size() < 6) return 0u;
      const size_t started = o.events[0].ByteSizeLong() + 5;
      const size_t step = o.events[1].ByteSizeLong() + 5;
      EXPECT_GT(step, 64u);
      return static_cast<uint32_t>(started + 32);
    }();
    return window;
  }

  std::vector<v1::TraceSummary> AllTraces() {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::ListTracesRequest req;
    req.set_page_size(1000);
    v1::ListTracesResponse resp;
    grpc::Status s = stub_->ListTraces(&c, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.traces().begin(), resp.traces().end()};
  }

  // Traces in `state` with at least `min_size` leaves.
  int Count(v1::TraceState state, uint64_t min_size = 0) {
    int n = 0;
    for (const v1::TraceSummary& t : AllTraces()) n += t.state() == state && t.size() >= min_size;
    return n;
  }

  // Polls until `done` holds (true) or `limit` passes (false). The limit is
  // a safety net against a hang, not a measurement.
  template <typename F>
  bool Eventually(F done, absl::Duration limit = absl::Seconds(90)) {
    const absl::Time end = absl::Now() + limit;
    while (absl::Now() < end) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return done();
  }

  // `n` generations from `threads` threads; every outcome.
  std::vector<GenerateOutcome> WellBehaved(int n, int threads) {
    std::vector<GenerateOutcome> outcomes(n);
    std::atomic<int> next{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        auto stub = Connect(address_);
        for (int i = next++; i < n; i = next++) {
          outcomes[i] = RunGenerate(stub.get(), Request(100 + i), absl::Seconds(120));
        }
      });
    }
    for (std::thread& t : pool) t.join();
    return outcomes;
  }

  std::unique_ptr<TempDir> dir_ = std::make_unique<TempDir>("slow_reader");
  std::unique_ptr<Daemon> daemon_;
  std::string address_;
  std::unique_ptr<v1::StepProof::Stub> stub_;
};

TEST_F(SlowReaderTest, StalledStreamsDoNotStopOtherClientsGenerations) {
  // Limits far away: the stalled streams stay blocked for the whole test.
  Start({"--max-pending-steps", "1000", "--max-event-wait-seconds", "3600"});
  const uint32_t window = WindowForStartedOnly();
  ASSERT_GT(window, 0u);
  std::vector<std::unique_ptr<StalledStream>> stalled;
  for (int i = 0; i < kStalled; ++i) {
    stalled.push_back(std::make_unique<StalledStream>(address_, Request(1), window));
    ASSERT_TRUE(stalled.back()->ok());
  }
  // Each stalled generation committed its first step (its write is what
  // blocks) before the other client starts.
  ASSERT_TRUE(Eventually([&] { return Count(v1::TRACE_STATE_OPEN, 2) == kStalled; }))
      << "open traces with a step: " << Count(v1::TRACE_STATE_OPEN, 2);

  constexpr int kGenerations = 16;
  std::vector<GenerateOutcome> outcomes = WellBehaved(kGenerations, kMaxConcurrent - kStalled);
  for (int i = 0; i < kGenerations; ++i) {
    EXPECT_TRUE(outcomes[i].status.ok())
        << "generation " << i << ": " << outcomes[i].status.error_code() << " "
        << outcomes[i].status.error_message();
    EXPECT_TRUE(outcomes[i].sealed()) << "generation " << i;
  }
  // The stalled streams were blocked all along, and the server is up.
  EXPECT_EQ(Count(v1::TRACE_STATE_OPEN), kStalled);
  EXPECT_EQ(Count(v1::TRACE_STATE_SEALED), kGenerations);
  EXPECT_TRUE(daemon_->Running()) << daemon_->err();

  // Clients that go away release their generations: all sealed.
  stalled.clear();
  EXPECT_TRUE(Eventually([&] { return Count(v1::TRACE_STATE_SEALED) == kGenerations + kStalled; }));
}

TEST_F(SlowReaderTest, BacklogOverTheLimitStopsTheGenerationWithResourceExhausted) {
  // Two steps may wait: a stalled stream (blocked on its first step) is
  // stopped when the engine queues its fourth.
  Start({"--max-pending-steps", "2", "--max-event-wait-seconds", "3600"});
  const uint32_t window = WindowForStartedOnly();
  ASSERT_GT(window, 0u);
  std::vector<std::unique_ptr<StalledStream>> stalled;
  for (int i = 0; i < kStalled; ++i) {
    stalled.push_back(std::make_unique<StalledStream>(address_, Request(1), window));
    ASSERT_TRUE(stalled.back()->ok());
  }
  // Sealed while the clients are still connected (and still not reading).
  EXPECT_TRUE(Eventually([&] { return Count(v1::TRACE_STATE_SEALED) == kStalled; }))
      << "sealed: " << Count(v1::TRACE_STATE_SEALED) << ", open: " << Count(v1::TRACE_STATE_OPEN);
  EXPECT_TRUE(Eventually([&] {
    return absl::StrContains(daemon_->out() + daemon_->err(), "steps were waiting to be sent");
  })) << daemon_->out();
  EXPECT_THAT(daemon_->out() + daemon_->err(), HasSubstr("RESOURCE_EXHAUSTED"));
  // Every slot is free again: kMaxConcurrent more streams are all admitted
  // (each starts a trace; a refused one would not).
  for (int i = 0; i < kMaxConcurrent; ++i) {
    stalled.push_back(std::make_unique<StalledStream>(address_, Request(1), window));
    ASSERT_TRUE(stalled.back()->ok());
  }
  EXPECT_TRUE(Eventually([&] {
    return static_cast<int>(AllTraces().size()) == kStalled + kMaxConcurrent;
  })) << "traces: " << AllTraces().size();
  EXPECT_TRUE(daemon_->Running());
}

TEST_F(SlowReaderTest, EventWaitingPastTheLimitStopsTheGenerationAndFreesItsSlot) {
  Start({"--max-pending-steps", "1000", "--max-event-wait-seconds", "1"});
  const uint32_t window = WindowForStartedOnly();
  ASSERT_GT(window, 0u);
  std::vector<std::unique_ptr<StalledStream>> stalled;
  for (int i = 0; i < kMaxConcurrent; ++i) {  // every slot
    stalled.push_back(std::make_unique<StalledStream>(address_, Request(1), window));
    ASSERT_TRUE(stalled.back()->ok());
  }
  EXPECT_TRUE(Eventually([&] { return Count(v1::TRACE_STATE_SEALED) == kMaxConcurrent; }))
      << "sealed: " << Count(v1::TRACE_STATE_SEALED) << ", open: " << Count(v1::TRACE_STATE_OPEN);
  EXPECT_TRUE(Eventually([&] {
    return absl::StrContains(daemon_->out() + daemon_->err(), "--max-event-wait");
  })) << daemon_->out();
  std::vector<GenerateOutcome> outcomes = WellBehaved(kMaxConcurrent, kMaxConcurrent);
  for (const GenerateOutcome& o : outcomes) EXPECT_TRUE(o.status.ok()) << o.status.error_message();
  EXPECT_TRUE(daemon_->Running());
}

}  // namespace
}  // namespace stepproof::reliability
