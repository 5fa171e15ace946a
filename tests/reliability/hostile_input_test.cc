// Hostile input against the real stepproofd (embedded model, started from
// $STEPPROOF_BIN_DIR): oversize messages, invalid UTF-8, absurd sampling
// values, bogus trace ids and step indexes, malformed page tokens, garbage
// on the wire, and many Generate streams opened and abandoned. Each gets the
// status docs/SERVICE.md promises (checked against the table there, not
// against what the server happens to answer), the server stays up, every
// trace it started ends sealed, and its resident memory stays bounded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
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

constexpr int kMaxConcurrent = 4;
constexpr int kMaxTokens = 48;

class HostileInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("hostile");
    daemon_ = new Daemon(dir_->path().string(), "server",
                         {"--data-dir", *dir_ / "data", "--listen", "127.0.0.1:0", "--threads",
                          "1", "--max-tokens", absl::StrCat(kMaxTokens),
                          "--max-concurrent-generations", absl::StrCat(kMaxConcurrent),
                          "--log-origin", "hostile.test/log"});
    address_ = new std::string(daemon_->WaitListening(absl::Seconds(60)));
  }
  static void TearDownTestSuite() {
    delete daemon_;  // kills the child
    delete address_;
    delete dir_;
  }

  void SetUp() override {
    ASSERT_FALSE(address_->empty()) << daemon_->out() << daemon_->err();
    stub_ = Connect(*address_);
  }
  // After every test: the server is still up and answering.
  void TearDown() override {
    ASSERT_TRUE(daemon_->Running()) << daemon_->err();
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(10));
    v1::GetVerifierKeyResponse key;
    EXPECT_TRUE(stub_->GetVerifierKey(&context, v1::GetVerifierKeyRequest(), &key).ok());
  }

  static v1::GenerateRequest Prompt(const std::string& text, uint32_t max_tokens = 16) {
    v1::GenerateRequest r;
    r.set_prompt(text);
    r.set_max_tokens(max_tokens);
    r.mutable_sampling()->set_greedy(true);
    return r;
  }

  // Generate that must be refused before a trace exists.
  void ExpectRefused(const v1::GenerateRequest& request, grpc::StatusCode code,
                     const std::string& message_part, const std::string& what) {
    GenerateOutcome o = RunGenerate(stub_.get(), request);
    EXPECT_EQ(o.status.error_code(), code) << what << ": " << o.status.error_message();
    EXPECT_THAT(o.status.error_message(), HasSubstr(message_part)) << what;
    EXPECT_TRUE(o.events.empty()) << what << ": a refused request started a trace";
  }

  std::string SealedTrace() {
    GenerateOutcome o = RunGenerate(stub_.get(), Prompt("What is 12 + 34?", kMaxTokens));
    EXPECT_TRUE(o.status.ok()) << o.status.error_message();
    EXPECT_TRUE(o.sealed());
    return o.events.empty() ? "" : o.events.front().started().trace_id();
  }

  // Every trace the server holds, through all pages.
  std::vector<v1::TraceSummary> AllTraces() {
    std::vector<v1::TraceSummary> all;
    std::string token;
    do {
      grpc::ClientContext c;
      SetDeadline(&c, absl::Seconds(10));
      v1::ListTracesRequest req;
      req.set_page_size(1000);
      req.set_page_token(token);
      v1::ListTracesResponse resp;
      grpc::Status s = stub_->ListTraces(&c, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      all.insert(all.end(), resp.traces().begin(), resp.traces().end());
      token = resp.next_page_token();
    } while (!token.empty());
    return all;
  }

  static TempDir* dir_;
  static Daemon* daemon_;
  static std::string* address_;
  std::unique_ptr<v1::StepProof::Stub> stub_;
};

TempDir* HostileInputTest::dir_ = nullptr;
Daemon* HostileInputTest::daemon_ = nullptr;
std::string* HostileInputTest::address_ = nullptr;

TEST_F(HostileInputTest, OversizeMessagesAreRefusedWithResourceExhausted) {
  // Over gRPC's 4 MiB receive limit: refused by the transport before parsing.
  ExpectRefused(Prompt(std::string(5 << 20, 'a')), grpc::StatusCode::RESOURCE_EXHAUSTED, "",
                "5 MiB prompt");
  // Under the transport limit, over --max-prompt-bytes (65536 by default).
  ExpectRefused(Prompt(std::string(65537, 'a')), grpc::StatusCode::RESOURCE_EXHAUSTED,
                "--max-prompt-bytes", "65537-byte prompt");
  // The limit counts every chat message's content.
  v1::GenerateRequest chat;
  for (int i = 0; i < 3; ++i) {
    v1::ChatMessage* m = chat.add_messages();
    m->set_role(i % 2 == 0 ? "user" : "assistant");
    m->set_content(std::string(30000, 'b'));
  }
  ExpectRefused(chat, grpc::StatusCode::RESOURCE_EXHAUSTED, "--max-prompt-bytes",
                "3 x 30000-byte messages");
  // 60,001 one-byte messages (under --max-prompt-bytes): the templated
  // conversation is refused, not run.
  v1::GenerateRequest many;
  for (int i = 0; i < 60001; ++i) {
    v1::ChatMessage* m = many.add_messages();
    m->set_role(i % 2 == 0 ? "user" : "assistant");
    m->set_content("7");
  }
  GenerateOutcome o = RunGenerate(stub_.get(), many);
  EXPECT_THAT(o.status.error_code(), ::testing::AnyOf(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                                      grpc::StatusCode::INVALID_ARGUMENT))
      << o.status.error_message();
  EXPECT_TRUE(o.events.empty());
  std::printf("60,001 messages: %s\n", o.status.error_message().c_str());
  // A 3 MiB trace id on a read call.
  grpc::ClientContext c;
  SetDeadline(&c, absl::Seconds(10));
  v1::GetTraceRequest req;
  req.set_trace_id(std::string(3 << 20, 'f'));
  v1::GetTraceResponse resp;
  grpc::Status s = stub_->GetTrace(&c, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(s.error_message().size(), 1000u) << "the message echoes the whole id";
}

TEST_F(HostileInputTest, HostileRoleIsNotEchoedInFullIntoTheStatusOrTheLog) {
  // Values a client controls must not turn one request into megabytes of log,
  // nor into an error status too big for the client to read (gRPC's default
  // 8 KiB metadata limit: the client would see RESOURCE_EXHAUSTED "received
  // initial metadata size exceeds limit" instead of the real error).
  const size_t before = daemon_->err().size();
  v1::GenerateRequest chat;
  v1::ChatMessage* m = chat.add_messages();
  m->set_role(std::string(1 << 20, 'r'));
  m->set_content("What is 1 + 1?");
  GenerateOutcome o = RunGenerate(stub_.get(), chat);
  EXPECT_EQ(o.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << o.status.error_message().substr(0, 200);
  EXPECT_THAT(o.status.error_message(), HasSubstr("role"));
  const size_t grown = daemon_->err().size() - before;
  EXPECT_LT(grown, 4096u) << "one refused request wrote " << grown << " bytes of log";
}

// Finding R-2 (docs/RELIABILITY.md): provenance/log/ledger.cc echoes the whole
// page token into the error, so a 1 MiB token writes 1 MiB of log and the
// client gets RESOURCE_EXHAUSTED (metadata limit) instead of INVALID_ARGUMENT.
// Enable once the message is truncated there.
TEST_F(HostileInputTest, HugePageTokenIsNotEchoedIntoTheStatusOrTheLog) {
  const size_t before = daemon_->err().size();
  grpc::ClientContext c;
  SetDeadline(&c, absl::Seconds(10));
  v1::ListTracesRequest list;
  list.set_page_token(std::string(1 << 20, 'p'));
  v1::ListTracesResponse lr;
  EXPECT_EQ(stub_->ListTraces(&c, list, &lr).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(daemon_->err().size() - before, 4096u);
}

TEST_F(HostileInputTest, InvalidUtf8InStringFieldsIsRefusedWithoutStartingATrace) {
  // proto3 `string` fields must hold UTF-8. The C++ server's parser rejects
  // invalid UTF-8 when it deserialises the request, before the service runs.
  const size_t traces_before = AllTraces().size();
  for (const std::string& bad : {std::string("What is \xff\xfe + 1?"), std::string("\xc3"),
                                 std::string("\xed\xa0\x80 surrogate"),
                                 std::string("\xc0\xaf overlong")}) {
    GenerateOutcome o = RunGenerate(stub_.get(), Prompt(bad));
    EXPECT_FALSE(o.status.ok()) << "accepted invalid UTF-8";
    EXPECT_THAT(o.status.error_code(),
                ::testing::AnyOf(grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::INTERNAL))
        << o.status.error_message();
    EXPECT_TRUE(o.events.empty());
    if (bad.size() == 1) {
      std::printf("invalid UTF-8 prompt: status %d: %s\n", o.status.error_code(),
                  o.status.error_message().c_str());
    }
    v1::GenerateRequest chat;
    v1::ChatMessage* m = chat.add_messages();
    m->set_role("user");
    m->set_content(bad);
    EXPECT_FALSE(RunGenerate(stub_.get(), chat).status.ok());
  }
  grpc::ClientContext c;
  SetDeadline(&c, absl::Seconds(10));
  v1::GetTraceRequest req;
  req.set_trace_id("\xff\xff\xff");
  v1::GetTraceResponse resp;
  EXPECT_FALSE(stub_->GetTrace(&c, req, &resp).ok());
  EXPECT_EQ(AllTraces().size(), traces_before);
}

TEST_F(HostileInputTest, AbsurdSamplingValuesAreInvalidArgumentNamingTheField) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    const char* what;
    std::function<void(v1::SamplingSettings*)> set;
    const char* field;
  };
  const std::vector<Case> cases = {
      {"temperature NaN", [&](auto* s) { s->set_temperature(nan); }, "temperature"},
      {"temperature inf", [&](auto* s) { s->set_temperature(inf); }, "temperature"},
      {"temperature -inf", [&](auto* s) { s->set_temperature(-inf); }, "temperature"},
      {"temperature -1", [](auto* s) { s->set_temperature(-1); }, "temperature"},
      {"temperature 1e30", [](auto* s) { s->set_temperature(1e30f); }, "temperature"},
      {"top_p NaN", [&](auto* s) { s->set_top_p(nan); }, "top_p"},
      {"top_p 0", [](auto* s) { s->set_top_p(0); }, "top_p"},
      {"top_p -0.5", [](auto* s) { s->set_top_p(-0.5f); }, "top_p"},
      {"top_p 1.5", [](auto* s) { s->set_top_p(1.5f); }, "top_p"},
      {"top_p inf", [&](auto* s) { s->set_top_p(inf); }, "top_p"},
      {"top_k -1", [](auto* s) { s->set_top_k(-1); }, "top_k"},
      {"top_k INT32_MIN", [](auto* s) { s->set_top_k(std::numeric_limits<int32_t>::min()); },
       "top_k"},
      {"top_k INT32_MAX", [](auto* s) { s->set_top_k(std::numeric_limits<int32_t>::max()); },
       "top_k"},
  };
  for (const Case& c : cases) {
    v1::GenerateRequest r = Prompt("What is 1 + 2?");
    r.mutable_sampling()->set_greedy(false);
    c.set(r.mutable_sampling());
    ExpectRefused(r, grpc::StatusCode::INVALID_ARGUMENT, c.field, c.what);
  }
  // Token budget and salt.
  v1::GenerateRequest huge = Prompt("What is 1 + 2?", std::numeric_limits<uint32_t>::max());
  ExpectRefused(huge, grpc::StatusCode::INVALID_ARGUMENT, "max_tokens", "max_tokens 2^32-1");
  v1::GenerateRequest over = Prompt("What is 1 + 2?", kMaxTokens + 1);
  ExpectRefused(over, grpc::StatusCode::INVALID_ARGUMENT, "max_tokens", "max_tokens over");
  v1::GenerateRequest salt = Prompt("What is 1 + 2?");
  salt.set_withhold_prompt(true);
  salt.set_prompt_salt(std::string(31, 's'));
  ExpectRefused(salt, grpc::StatusCode::INVALID_ARGUMENT, "prompt_salt", "31-byte salt");
  salt.set_prompt_salt(std::string(1 << 20, 's'));
  ExpectRefused(salt, grpc::StatusCode::INVALID_ARGUMENT, "prompt_salt", "1 MiB salt");
  // Extreme but valid values still work: the largest seed, top_k at the
  // edge of "off", a tiny temperature.
  v1::GenerateRequest edge = Prompt("What is 1 + 2?", 8);
  edge.mutable_sampling()->set_greedy(false);
  edge.mutable_sampling()->set_temperature(1e-30f);
  edge.mutable_sampling()->set_top_p(1e-30f);
  edge.mutable_sampling()->set_top_k(1);
  edge.set_seed(std::numeric_limits<uint64_t>::max());
  GenerateOutcome ok = RunGenerate(stub_.get(), edge);
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_TRUE(ok.sealed());
}

TEST_F(HostileInputTest, BogusTraceIdsAndIndexesGetInvalidArgumentOrNotFound) {
  const std::string real = SealedTrace();
  ASSERT_FALSE(real.empty());
  const std::vector<std::string> malformed = {
      "", "abc", std::string(32, 'g'), std::string(31, 'a'), std::string(33, 'a'),
      std::string(64, 'a'), "0123456789ABCDEF0123456789ABCDEF",
      std::string("0123456789abcdef\0" "123456789abcde", 32), "' OR 1=1 --                     ",
      "../../../../etc/passwd0000000000", real + "\n"};
  for (const std::string& id : malformed) {
    grpc::ClientContext c1, c2, c3, c4;
    for (auto* c : {&c1, &c2, &c3, &c4}) SetDeadline(c, absl::Seconds(10));
    v1::GetTraceRequest t;
    t.set_trace_id(id);
    v1::GetTraceResponse tr;
    EXPECT_EQ(stub_->GetTrace(&c1, t, &tr).error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << id;
    v1::GetStepProofRequest p;
    p.set_trace_id(id);
    v1::GetStepProofResponse pr;
    EXPECT_EQ(stub_->GetStepProof(&c2, p, &pr).error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << id;
    v1::GetTraceConsistencyRequest q;
    q.set_trace_id(id);
    q.set_size1(1);
    q.set_size2(1);
    v1::GetTraceConsistencyResponse qr;
    EXPECT_EQ(stub_->GetTraceConsistency(&c3, q, &qr).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << id;
    v1::GetLogInclusionRequest l;
    l.set_trace_id(id);
    v1::GetLogInclusionResponse lr;
    EXPECT_EQ(stub_->GetLogInclusion(&c4, l, &lr).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << id;
  }
  // Well formed but unknown.
  {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetTraceRequest t;
    t.set_trace_id(std::string(32, '0'));
    v1::GetTraceResponse tr;
    EXPECT_EQ(stub_->GetTrace(&c, t, &tr).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // Step indexes past the end of a real trace.
  grpc::ClientContext gc;
  SetDeadline(&gc, absl::Seconds(10));
  v1::GetTraceRequest t;
  t.set_trace_id(real);
  v1::GetTraceResponse tr;
  ASSERT_TRUE(stub_->GetTrace(&gc, t, &tr).ok());
  const uint64_t size = tr.trace().size();
  for (uint64_t index : {size, size + 1, uint64_t{1} << 63, std::numeric_limits<uint64_t>::max()}) {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetStepProofRequest p;
    p.set_trace_id(real);
    p.set_index(index);
    v1::GetStepProofResponse pr;
    EXPECT_EQ(stub_->GetStepProof(&c, p, &pr).error_code(), grpc::StatusCode::NOT_FOUND) << index;
  }
  // Proof sizes out of order or out of range.
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const std::vector<std::pair<uint64_t, uint64_t>> bad_sizes = {
      {0, 0}, {0, 1}, {2, 1}, {1, size + 1}, {1, kMax}, {kMax, kMax}};
  for (auto [s1, s2] : bad_sizes) {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetTraceConsistencyRequest q;
    q.set_trace_id(real);
    q.set_size1(s1);
    q.set_size2(s2);
    v1::GetTraceConsistencyResponse qr;
    EXPECT_EQ(stub_->GetTraceConsistency(&c, q, &qr).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << s1 << "," << s2;
    if (s2 == size + 1) continue;  // may be within the log's size
    grpc::ClientContext lc;
    SetDeadline(&lc, absl::Seconds(10));
    v1::GetLogConsistencyRequest l;
    l.set_size1(s1);
    l.set_size2(s2);
    v1::GetLogConsistencyResponse lr;
    EXPECT_EQ(stub_->GetLogConsistency(&lc, l, &lr).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << s1 << "," << s2;
  }
  {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetLogInclusionRequest l;
    l.set_leaf_index(kMax);
    v1::GetLogInclusionResponse lr;
    grpc::Status s = stub_->GetLogInclusion(&c, l, &lr);
    EXPECT_THAT(s.error_code(), ::testing::AnyOf(grpc::StatusCode::NOT_FOUND,
                                                 grpc::StatusCode::INVALID_ARGUMENT))
        << s.error_message();
  }
  {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetLogInclusionRequest l;  // neither trace_id nor leaf_index
    v1::GetLogInclusionResponse lr;
    EXPECT_EQ(stub_->GetLogInclusion(&c, l, &lr).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetLogCheckpointRequest l;
    l.set_size(kMax);
    v1::GetLogCheckpointResponse lr;
    EXPECT_EQ(stub_->GetLogCheckpoint(&c, l, &lr).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(HostileInputTest, MalformedPageTokensAndSizesAreInvalidArgument) {
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(SealedTrace().empty());
  grpc::ClientContext first;
  SetDeadline(&first, absl::Seconds(10));
  v1::ListTracesRequest req;
  req.set_page_size(1);
  v1::ListTracesResponse resp;
  ASSERT_TRUE(stub_->ListTraces(&first, req, &resp).ok());
  const std::string token = resp.next_page_token();
  ASSERT_FALSE(token.empty());

  std::mt19937 rng(7);
  std::string random_bytes(200, '\0');
  for (char& ch : random_bytes) ch = static_cast<char>(rng() & 0x7f);
  std::string flipped = token;
  flipped[0] ^= 0x20;
  const std::vector<std::string> bad = {
      "x", random_bytes, flipped, token + "0x", token + " ", "-" + token,
      token.substr(0, token.size() - 1) + "a", std::string(2000, '9'),
      "traces.v1.", "traces.v1.0", "traces.v1.-1", "traces.v1.99999999999999999999999999",
      "traces.v1.0001", "traces.v1.+5"};
  for (const std::string& t : bad) {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::ListTracesRequest r;
    r.set_page_token(t);
    v1::ListTracesResponse out;
    grpc::Status s = stub_->ListTraces(&c, r, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << t.substr(0, 40) << ": " << s.error_message().substr(0, 200);
  }
  for (int32_t size : {-1, 1001, std::numeric_limits<int32_t>::min(),
                       std::numeric_limits<int32_t>::max()}) {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::ListTracesRequest r;
    r.set_page_size(size);
    v1::ListTracesResponse out;
    EXPECT_EQ(stub_->ListTraces(&c, r, &out).error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << size;
  }
  // The genuine token still pages on.
  grpc::ClientContext next;
  SetDeadline(&next, absl::Seconds(10));
  req.set_page_token(token);
  v1::ListTracesResponse page2;
  ASSERT_TRUE(stub_->ListTraces(&next, req, &page2).ok());
  ASSERT_EQ(page2.traces_size(), 1);
  EXPECT_NE(page2.traces(0).trace_id(), resp.traces(0).trace_id());
}

TEST_F(HostileInputTest, GarbageOnTheWireDoesNotTakeTheServerDown) {
  const auto colon = address_->rfind(':');
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(address_->substr(colon + 1), &port));
  std::mt19937 rng(11);
  const std::vector<std::string> payloads = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + std::string(9, '\xff') + std::string(4096, '\x00'),
      std::string(65536, '\0')};
  for (int round = 0; round < 20; ++round) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string payload = payloads[round % payloads.size()];
    if (round % payloads.size() == 2) {
      for (char& ch : payload) ch = static_cast<char>(rng());
    }
    (void)!send(fd, payload.data(), payload.size(), MSG_NOSIGNAL);
    close(fd);
  }
  EXPECT_FALSE(SealedTrace().empty());
}

// Runs `rounds` rounds of abuse: streams cancelled before, at and after the
// first event, streams with deadlines already past or about to pass, and
// clients that drop their channel mid-stream. Returns how many calls ran.
int AbandonStreams(const std::string& address, int threads, int per_thread, uint32_t seed) {
  std::atomic<int> calls{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(seed + t);
      for (int i = 0; i < per_thread; ++i) {
        auto stub = Connect(address);  // a channel per call: some are dropped mid-stream
        grpc::ClientContext context;
        const int mode = static_cast<int>(rng() % 4);
        if (mode == 0) SetDeadline(&context, absl::Milliseconds(rng() % 5));
        else SetDeadline(&context, absl::Seconds(30));
        v1::GenerateRequest r;
        r.set_prompt(absl::StrCat("What is ", rng() % 1000, " + ", rng() % 1000, "?"));
        r.set_max_tokens(kMaxTokens);
        auto reader = stub->Generate(&context, r);
        v1::GenerateEvent event;
        if (mode >= 2) reader->Read(&event);
        if (mode == 3) reader->Read(&event);
        if (mode != 0) context.TryCancel();
        (void)reader->Finish();
        calls.fetch_add(1);
      }
    });
  }
  for (std::thread& th : pool) th.join();
  return calls.load();
}

TEST_F(HostileInputTest, AbandonedStreamsAreSealedAndMemoryStaysBounded) {
  // Warm-up: the first round grows the heap, gRPC's thread pool and caches.
  AbandonStreams(*address_, 16, 8, 1);
  absl::SleepFor(absl::Milliseconds(500));
  const int64_t warm_kib = daemon_->RssKib();
  ASSERT_GT(warm_kib, 0);
  std::vector<int64_t> samples;
  int calls = 0;
  for (int round = 0; round < 5; ++round) {
    calls += AbandonStreams(*address_, 16, 8, 100 * (round + 2));
    samples.push_back(daemon_->RssKib());
  }
  // Slots come back: a new generation is admitted once the abandoned ones
  // have noticed the cancellation.
  GenerateOutcome after;
  for (int i = 0; i < 100; ++i) {
    after = RunGenerate(stub_.get(), Prompt("What is 5 + 6?", kMaxTokens));
    if (after.status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();
  // Every trace that was started is sealed: none is left open.
  for (const v1::TraceSummary& t : AllTraces()) {
    EXPECT_EQ(t.state(), v1::TRACE_STATE_SEALED) << t.trace_id();
  }
  const int64_t end_kib = daemon_->RssKib();
  std::string history = absl::StrCat("warm ", warm_kib, " KiB; rounds:");
  for (int64_t s : samples) absl::StrAppend(&history, " ", s);
  std::printf("abandoned %d streams; RSS %s; end %lld KiB\n", calls, history.c_str(),
              static_cast<long long>(end_kib));
  // Bounded: no more than 16 MiB over the warm figure after 640 more streams.
  // Under AddressSanitizer freed memory stays resident in its quarantine
  // (256 MiB by default), so the bound there is the quarantine's, not ours.
#if defined(__SANITIZE_ADDRESS__)
  constexpr int64_t kMaxGrowthKib = 256 * 1024;
#else
  constexpr int64_t kMaxGrowthKib = 16 * 1024;
#endif
  EXPECT_LT(end_kib - warm_kib, kMaxGrowthKib) << history;
}

}  // namespace
}  // namespace stepproof::reliability
