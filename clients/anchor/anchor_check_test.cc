// stepproof_anchor_check against vectors made by ethers v6 (an independent
// ABI encoder) and against a real local chain: anvil from
// clients/anchor/node_modules, with RootAnchor deployed from the committed
// artifact and anchored by hand-encoded transactions.
#include "clients/anchor/anchor_check.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "clients/anchor/http_post.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "provenance/checkpoint.h"
#include "provenance/note.h"
#include "provenance/signer.h"

extern char** environ;

namespace stepproof::clients {
namespace {

using ::testing::HasSubstr;

merkle::Hash Filled(uint8_t b) {
  merkle::Hash h;
  h.fill(b);
  return h;
}

TEST(AnchorCheckEncoding, RootOfCallMatchesEthersEncoding) {
  // ethers.Interface(RootAnchor abi).encodeFunctionData('rootOf', [0xabab.., 5n])
  EXPECT_EQ(EncodeRootOfCall(Filled(0xab), 5),
            "0x615f0aa5"
            "abababababababababababababababababababababababababababababababab"
            "0000000000000000000000000000000000000000000000000000000000000005");
  EXPECT_THAT(EncodeRootOfCall(Filled(0), 0xffffffffffffffffull),
              ::testing::EndsWith("000000000000000000000000000000000000000000000000ffffffffffffffff"));
}

TEST(AnchorCheckEncoding, LogIdIsSha256OfTheOrigin) {
  // node: crypto.createHash('sha256').update('example.com/log').digest('hex')
  EXPECT_EQ(merkle::ToHex(AnchorLogId("example.com/log")),
            "4d3203c8f35cdf600e475f55fede6081a703d3d322f208865fca2ec4f0e030f8");
}

TEST(AnchorCheckEncoding, DecodesOneBytes32AndRejectsOtherResults) {
  auto ok = DecodeBytes32Result(
      "0x0101010101010101010101010101010101010101010101010101010101010101");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, Filled(1));
  EXPECT_EQ(DecodeBytes32Result("0x").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(DecodeBytes32Result("0x01").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeBytes32Result(std::string(66, 'z')).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(HttpPostTest, ParsesHttpUrlsAndRejectsOthers) {
  auto u = ParseHttpUrl("http://127.0.0.1:8545");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8545);
  EXPECT_EQ(u->target, "/");
  u = ParseHttpUrl("http://[::1]:9/rpc?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9);
  EXPECT_EQ(u->target, "/rpc?x=1");
  u = ParseHttpUrl("http://node.example");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(ParseHttpUrl("https://x").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(ParseHttpUrl("ftp://x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseHttpUrl("http://x:0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseHttpUrl("http://x:70000").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseHttpUrl("http://:80").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpPostTest, DecodesChunkedBodiesAndRejectsBrokenOnes) {
  auto d = DecodeChunked("4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, "Wikipedia in\r\n\r\nchunks.");
  EXPECT_EQ(DecodeChunked("4\r\nWik").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeChunked("zz\r\nWiki\r\n0\r\n\r\n").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeChunked("4\r\nWikiXX0\r\n\r\n").status().code(), absl::StatusCode::kDataLoss);
}

// ------------------------------------------------- canned HTTP responses

// Serves one connection on 127.0.0.1: reads the request head and body (by
// Content-Length), answers `response` (nothing at all if empty, holding the
// connection open until `hold` passes), closes.
class OneShotHttpServer {
 public:
  OneShotHttpServer(std::string response, absl::Duration hold = absl::ZeroDuration())
      : response_(std::move(response)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 1);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    url_ = absl::StrCat("http://127.0.0.1:", ntohs(a.sin_port), "/rpc");
    thread_ = std::thread([this, hold] {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      char buf[4096];
      while (in.find("\r\n\r\n") == std::string::npos || in.size() < Expected(in)) {
        const ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      request_ = in;
      if (response_.empty()) {
        absl::SleepFor(hold);
      } else {
        send(c, response_.data(), response_.size(), MSG_NOSIGNAL);
      }
      close(c);
    });
  }
  ~OneShotHttpServer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  const std::string& url() const { return url_; }
  const std::string& request() const { return request_; }

 private:
  static size_t Expected(const std::string& in) {
    const size_t head = in.find("\r\n\r\n");
    const size_t cl = in.find("Content-Length: ");
    if (head == std::string::npos || cl == std::string::npos) return 0;
    return head + 4 + std::stoul(in.substr(cl + 16));
  }
  std::string response_;
  int fd_ = -1;
  std::string url_;
  std::string request_;
  std::thread thread_;
};

constexpr char kRootJson[] =
    R"({"jsonrpc":"2.0","id":1,"result":"0x0202020202020202020202020202020202020202020202020202020202020202"})";

TEST(HttpPostTest, SendsOnePostAndReadsAChunkedReply) {
  const std::string body = kRootJson;
  OneShotHttpServer server(absl::StrCat(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n",
      absl::StrFormat("%x", 10), "\r\n", body.substr(0, 10), "\r\n",
      absl::StrFormat("%x", body.size() - 10), "\r\n", body.substr(10),
      "\r\n0\r\n\r\n"));
  auto root = FetchAnchoredRoot(server.url(), "0x5fbdb2315678afecb367f032d93f642f64180aa3",
                                Filled(0xab), 5);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root, Filled(2));
  EXPECT_THAT(server.request(), ::testing::StartsWith("POST /rpc HTTP/1.1\r\n"));
  EXPECT_THAT(server.request(), HasSubstr(R"("method":"eth_call")"));
  EXPECT_THAT(server.request(), HasSubstr(EncodeRootOfCall(Filled(0xab), 5)));
}

TEST(HttpPostTest, ReportsHttpErrorsRpcErrorsAndGarbage) {
  const std::string contract = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
  {
    OneShotHttpServer server("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    absl::Status s = CheckAnchored(server.url(), contract, Filled(1), 5, Filled(2));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("answered HTTP 503"));
  }
  {
    const std::string err = R"({"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted"}})";
    OneShotHttpServer server(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", err.size(),
                                          "\r\n\r\n", err));
    absl::Status s = CheckAnchored(server.url(), contract, Filled(1), 5, Filled(2));
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("execution reverted"));
  }
  {
    OneShotHttpServer server("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!");
    EXPECT_EQ(CheckAnchored(server.url(), contract, Filled(1), 5, Filled(2)).code(),
              absl::StatusCode::kDataLoss);
  }
  {
    OneShotHttpServer server("SMTP ready\r\n\r\n");
    EXPECT_EQ(CheckAnchored(server.url(), contract, Filled(1), 5, Filled(2)).code(),
              absl::StatusCode::kDataLoss);
  }
  {
    OneShotHttpServer server("HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{}");
    absl::Status s = CheckAnchored(server.url(), contract, Filled(1), 5, Filled(2));
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("truncated"));
  }
}

TEST(HttpPostTest, GivesUpOnASilentServerAtTheDeadline) {
  OneShotHttpServer server("", absl::Seconds(2));
  const absl::Time start = absl::Now();
  auto r = HttpPost(server.url(), "application/json", "{}", absl::Milliseconds(300));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

// ------------------------------------------------------------ real chain

// Anvil's first default dev account (unlocked: eth_sendTransaction works).
constexpr char kDevAccount[] = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
// Selectors (ethers.id(signature).slice(0, 10)).
constexpr char kRegisterSelector[] = "d22057a9";  // register(bytes32,address)
constexpr char kAnchorSelector[] = "70c127c6";    // anchor(bytes32,uint64,bytes32)

std::string SourceDir() {
  const char* s = std::getenv("STEPPROOF_SOURCE_DIR");
  return s != nullptr ? s : ".";
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class AnchorCheckOnAnvilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string anvil = SourceDir() +
        "/clients/anchor/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
    if (access(anvil.c_str(), X_OK) != 0) {
      GTEST_SKIP() << "no anvil at " << anvil
                   << ": clients/anchor/node_modules is not installed "
                      "(scripts/install-deps.sh runs npm ci)";
    }
    const int port = FreePort();
    url_ = absl::StrCat("http://127.0.0.1:", port);
    const std::string port_text = std::to_string(port);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    std::vector<std::string> args = {anvil, "--host", "127.0.0.1", "--port",
                                      port_text, "--accounts", "2"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&pid_, anvil.c_str(), &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    for (int i = 0; i < 200; ++i) {
      if (Rpc("eth_chainId", nlohmann::json::array()).is_string()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(Rpc("eth_chainId", nlohmann::json::array()).is_string())
        << "anvil did not start on " << url_;
    DeployAndRegister();
  }

  void TearDown() override { StopChain(); }

  void StopChain() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      pid_ = 0;
    }
  }

  // The JSON-RPC result, or null on any error.
  nlohmann::json Rpc(const std::string& method, const nlohmann::json& params) {
    const nlohmann::json req = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}};
    auto r = HttpPost(url_, "application/json", req.dump(), absl::Seconds(5));
    if (!r.ok() || r->status != 200) return nullptr;
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.contains("result")) return nullptr;
    return j["result"];
  }

  // Sends a transaction from the dev account; returns its receipt.
  nlohmann::json Send(const std::string& to, const std::string& data) {
    nlohmann::json tx = {{"from", kDevAccount}, {"data", data}, {"gas", "0x200000"}};
    if (!to.empty()) tx["to"] = to;
    nlohmann::json hash = Rpc("eth_sendTransaction", nlohmann::json::array({tx}));
    EXPECT_TRUE(hash.is_string()) << "eth_sendTransaction failed: " << data.substr(0, 10);
    if (!hash.is_string()) return nullptr;
    nlohmann::json receipt;
    for (int i = 0; i < 100 && !receipt.is_object(); ++i) {
      receipt = Rpc("eth_getTransactionReceipt", nlohmann::json::array({hash}));
      if (!receipt.is_object()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(receipt.is_object()) << "no receipt for " << hash;
    if (!receipt.is_object()) return nullptr;
    EXPECT_EQ(receipt.value("status", ""), "0x1") << "transaction reverted";
    return receipt;
  }

  void DeployAndRegister() {
    std::ifstream in(SourceDir() + "/clients/anchor/artifacts/RootAnchor.json");
    std::stringstream text;
    text << in.rdbuf();
    auto artifact = nlohmann::json::parse(text.str(), nullptr, false);
    ASSERT_FALSE(artifact.is_discarded());
    nlohmann::json receipt = Send("", artifact["bytecode"].get<std::string>());
    ASSERT_TRUE(receipt.is_object() && receipt["contractAddress"].is_string());
    contract_ = receipt["contractAddress"].get<std::string>();
    log_id_ = AnchorLogId("anchor-check.example/log");
    Send(contract_, absl::StrCat("0x", kRegisterSelector, merkle::ToHex(log_id_),
                                 std::string(24, '0'), std::string(kDevAccount).substr(2)));
  }

  void Anchor(uint64_t size, const merkle::Hash& root) {
    Send(contract_, absl::StrCat("0x", kAnchorSelector, merkle::ToHex(log_id_),
                                 std::string(48, '0'), absl::StrFormat("%016x", size),
                                 merkle::ToHex(root)));
  }

  pid_t pid_ = 0;
  std::string url_;
  std::string contract_;
  merkle::Hash log_id_{};
};

TEST_F(AnchorCheckOnAnvilTest, AcceptsTheAnchoredRoot) {
  Anchor(7, Filled(0x77));
  EXPECT_TRUE(CheckAnchored(url_, contract_, log_id_, 7, Filled(0x77)).ok());
  auto fetched = FetchAnchoredRoot(url_, contract_, log_id_, 7);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(*fetched, Filled(0x77));
}

TEST_F(AnchorCheckOnAnvilTest, RejectsATamperedRoot) {
  Anchor(7, Filled(0x77));
  merkle::Hash tampered = Filled(0x77);
  tampered[31] ^= 1;
  absl::Status s = CheckAnchored(url_, contract_, log_id_, 7, tampered);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("anchored root differs at size 7"));
}

TEST_F(AnchorCheckOnAnvilTest, RejectsAnUnanchoredSizeAndAnotherLogId) {
  Anchor(7, Filled(0x77));
  absl::Status s = CheckAnchored(url_, contract_, log_id_, 8, Filled(0x77));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("not anchored"));
  s = CheckAnchored(url_, contract_, AnchorLogId("other.example/log"), 7, Filled(0x77));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_EQ(CheckAnchored(url_, contract_, log_id_, 0, Filled(0x77)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(AnchorCheckOnAnvilTest, RejectsAnAddressWithoutTheContract) {
  absl::Status s = CheckAnchored(url_, kDevAccount, log_id_, 7, Filled(0x77));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("no RootAnchor contract"));
  EXPECT_EQ(CheckAnchored(url_, "0x1234", log_id_, 7, Filled(0x77)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(AnchorCheckOnAnvilTest, ChecksASignedLogCheckpoint) {
  Anchor(7, Filled(0x77));
  const std::array<uint8_t, 32> seed{1, 2, 3};
  auto signer = provenance::Signer::FromSeed("anchor-check.example/log", seed);
  ASSERT_TRUE(signer.ok()) << signer.status();
  provenance::Checkpoint cp;
  cp.origin = "anchor-check.example/log";  // the registered log id's origin
  cp.size = 7;
  cp.root = Filled(0x77);
  auto note = provenance::SignNote(cp.Marshal(), *signer);
  ASSERT_TRUE(note.ok()) << note.status();
  EXPECT_TRUE(CheckLogCheckpointAnchored(url_, contract_, *note, signer->verifier()).ok());

  cp.root[0] ^= 1;  // validly signed, but not the anchored root
  auto other = provenance::SignNote(cp.Marshal(), *signer);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(CheckLogCheckpointAnchored(url_, contract_, *other, signer->verifier()).code(),
            absl::StatusCode::kFailedPrecondition);

  cp.origin = "other.example/log";  // another log id
  cp.root = Filled(0x77);
  auto other_log = provenance::SignNote(cp.Marshal(), *signer);
  ASSERT_TRUE(other_log.ok());
  EXPECT_EQ(CheckLogCheckpointAnchored(url_, contract_, *other_log, signer->verifier()).code(),
            absl::StatusCode::kNotFound);

  std::string forged = *note;  // the anchored values, signature broken
  forged[forged.size() - 5] = forged[forged.size() - 5] == 'A' ? 'B' : 'A';
  absl::Status s = CheckLogCheckpointAnchored(url_, contract_, forged, signer->verifier());
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("log checkpoint: "));
}

TEST_F(AnchorCheckOnAnvilTest, ReportsAChainThatWentAway) {
  Anchor(7, Filled(0x77));
  StopChain();
  absl::Status s = CheckAnchored(url_, contract_, log_id_, 7, Filled(0x77));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("Connection refused"));
}

}  // namespace
}  // namespace stepproof::clients
