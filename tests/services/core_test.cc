// Unit tests of the small services/ parts: config validation, model files,
// the tokenizer digest, bearer auth, the event log and the chat template.
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/chat_template.h"
#include "merkle/hash.h"
#include "services/auth.h"
#include "services/config.h"
#include "services/event_log.h"
#include "services/generation.h"
#include "services/model_file.h"
#include "services/model_identity.h"
#include "tests/services/test_env.h"

namespace stepproof::service {
namespace {

using ::testing::HasSubstr;
using testing::FreshDir;
using testing::ReadFile;
using testing::WriteFile;
using testing::WriteSecretFile;

// ---------------------------------------------------------------- config

TEST(ListenAddressTest, ParsesHostAndPort) {
  absl::StatusOr<ListenAddress> a = ParseListenAddress("127.0.0.1:7700");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7700);
  a = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 0);
  a = ParseListenAddress("unix:/tmp/x.sock");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->is_unix);
}

TEST(ListenAddressTest, RejectsMalformedAddressesNamingTheProblem) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:70000", ":80", "::1:80", "127.0.0.1:-1",
                          "127.0.0.1:", "host:8o", "[::1]80", "unix:"}) {
    absl::StatusOr<ListenAddress> a = ParseListenAddress(bad);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(a.status().message()), HasSubstr("--listen")) << bad;
  }
}

TEST(ListenAddressTest, KnowsLoopbackAddresses) {
  for (const char* loop : {"127.0.0.1:1", "127.9.8.7:1", "[::1]:1", "localhost:1", "unix:/x"}) {
    EXPECT_TRUE(IsLoopback(*ParseListenAddress(loop))) << loop;
  }
  for (const char* open : {"0.0.0.0:1", "10.0.0.1:1", "[::]:1", "example.com:1",
                           "128.0.0.1:1", "[::2]:1"}) {
    EXPECT_FALSE(IsLoopback(*ParseListenAddress(open))) << open;
  }
}

TEST(ServerConfigTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateServerConfig(ServerConfig{}).ok());
}

TEST(ServerConfigTest, RefusesNonLoopbackWithoutTlsUnlessInsecure) {
  ServerConfig c;
  c.listen = "0.0.0.0:7700";
  absl::Status s = ValidateServerConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("TLS"));
  c.insecure = true;
  EXPECT_TRUE(ValidateServerConfig(c).ok());
  c.insecure = false;
  c.tls_cert = "cert.pem";
  c.tls_key = "key.pem";
  EXPECT_TRUE(ValidateServerConfig(c).ok());
}

TEST(ServerConfigTest, RejectsBadValuesNamingTheFlag) {
  struct Case {
    std::string flag;
    std::function<void(ServerConfig&)> mutate;
  };
  std::vector<Case> cases = {
      {"--data-dir", [](ServerConfig& c) { c.data_dir = ""; }},
      {"--listen", [](ServerConfig& c) { c.listen = "nowhere"; }},
      {"--log-origin", [](ServerConfig& c) { c.log_origin = "has space"; }},
      {"--log-origin", [](ServerConfig& c) { c.log_origin = "a+b"; }},
      {"--log-origin", [](ServerConfig& c) { c.log_origin = ""; }},
      {"--threads", [](ServerConfig& c) { c.threads = -1; }},
      {"--max-concurrent-generations", [](ServerConfig& c) { c.max_concurrent_generations = 0; }},
      {"--max-prompt-bytes", [](ServerConfig& c) { c.max_prompt_bytes = 0; }},
      {"--max-prompt-bytes", [](ServerConfig& c) { c.max_prompt_bytes = (1 << 20) + 1; }},
      {"--max-tokens", [](ServerConfig& c) { c.max_tokens = 0; }},
      {"--tls-key", [](ServerConfig& c) { c.tls_cert = "cert.pem"; }},
      {"--tls-cert", [](ServerConfig& c) { c.tls_key = "key.pem"; }},
      {"--tls-client-ca", [](ServerConfig& c) { c.tls_client_ca = "ca.pem"; }},
  };
  for (const Case& k : cases) {
    ServerConfig c;
    k.mutate(c);
    absl::Status s = ValidateServerConfig(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << k.flag;
    EXPECT_THAT(std::string(s.message()), HasSubstr(k.flag));
  }
}

TEST(ServerConfigTest, ParsesDeviceChoices) {
  EXPECT_EQ(*ParseDeviceChoice("auto"), DeviceChoice::kAuto);
  EXPECT_EQ(*ParseDeviceChoice("cpu"), DeviceChoice::kCpu);
  EXPECT_EQ(*ParseDeviceChoice("cuda"), DeviceChoice::kCuda);
  absl::StatusOr<DeviceChoice> bad = ParseDeviceChoice("tpu");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("auto, cpu, cuda"));
}

// ---------------------------------------------------------------- model files

constexpr char kAbcSha256[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";  // FIPS 180-2

TEST(ModelFileTest, Sha256FileMatchesPublishedVector) {
  auto dir_holder = FreshDir("sha_vector");
  const testing::TempDir& dir = *dir_holder;
  WriteFile(dir / "abc", "abc");
  absl::StatusOr<merkle::Hash> h = Sha256File((dir / "abc").string());
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(merkle::ToHex(*h), kAbcSha256);
}

TEST(ModelFileTest, Sha256FileStreamsLargeFilesLikeOneShotHash) {
  auto dir_holder = FreshDir("sha_large");
  const testing::TempDir& dir = *dir_holder;
  std::string content(3 * (1 << 20) + 12345, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7919 >> 3);
  WriteFile(dir / "big", content);
  absl::StatusOr<merkle::Hash> h = Sha256File((dir / "big").string());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, merkle::Sha256Of(std::string_view(content)));
}

TEST(ModelFileTest, Sha256FileOfMissingFileIsNotFound) {
  auto dir_holder = FreshDir("sha_missing");
  const testing::TempDir& dir = *dir_holder;
  EXPECT_EQ(Sha256File((dir / "nope").string()).status().code(), absl::StatusCode::kNotFound);
}

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(ModelFileTest, MaterializeWritesContentUnderItsDigestWithMode0600) {
  auto dir_holder = FreshDir("materialize");
  const testing::TempDir& dir = *dir_holder;
  const std::string models = (dir / "data" / "models").string();
  absl::StatusOr<MaterializedModel> m = MaterializeModel(models, Bytes("abc"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->path, models + "/" + kAbcSha256 + ".gguf");
  EXPECT_EQ(merkle::ToHex(m->digest), kAbcSha256);
  EXPECT_EQ(ReadFile(m->path), "abc");
  struct stat st {};
  ASSERT_EQ(stat(m->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(models.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // Nothing else (no temporary files) is left in the folder.
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(models)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(ModelFileTest, MaterializeKeepsAnIntactFileAndReplacesADamagedOne) {
  auto dir_holder = FreshDir("materialize_again");
  const testing::TempDir& dir = *dir_holder;
  const std::string models = (dir / "models").string();
  absl::StatusOr<MaterializedModel> first = MaterializeModel(models, Bytes("abc"));
  ASSERT_TRUE(first.ok());
  struct stat before {};
  ASSERT_EQ(stat(first->path.c_str(), &before), 0);
  absl::StatusOr<MaterializedModel> second = MaterializeModel(models, Bytes("abc"));
  ASSERT_TRUE(second.ok());
  struct stat after {};
  ASSERT_EQ(stat(second->path.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // not rewritten

  WriteFile(first->path, "abd");  // same size, other content
  absl::StatusOr<MaterializedModel> third = MaterializeModel(models, Bytes("abc"));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(ReadFile(third->path), "abc");
}

TEST(ModelFileTest, MaterializeRejectsEmptyModelAndBadFolder) {
  auto dir_holder = FreshDir("materialize_bad");
  const testing::TempDir& dir = *dir_holder;
  EXPECT_EQ(MaterializeModel((dir / "m").string(), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  WriteFile(dir / "file", "x");
  absl::StatusOr<MaterializedModel> m = MaterializeModel((dir / "file" / "models").string(), Bytes("abc"));
  EXPECT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("file"));
}

// ---------------------------------------------------------------- tokenizer digest

inference::TokenizerData SmallTokenizer() {
  inference::TokenizerData t;
  t.model = "gpt2";
  t.pre = "qwen2";
  t.tokens = {"a", "bc"};
  t.token_types = {1, 3};
  t.merges = {"b c"};
  t.bos_id = 0;
  t.eos_id = 1;
  t.pad_id = -1;
  return t;
}

TEST(TokenizerDigestTest, SerialisationIsTheDocumentedByteLayout) {
  using namespace std::string_literals;
  const std::string expected =
      "stepproof.tokenizer/v1\n"s +
      "\0\0\0\0\0\0\0\4gpt2"s + "\0\0\0\0\0\0\0\5qwen2"s +
      "\0\0\0\0\0\0\0\2"s + "\0\0\0\0\0\0\0\1a"s + "\0\0\0\0\0\0\0\2bc"s +
      "\0\0\0\0\0\0\0\2"s + "\0\0\0\1"s + "\0\0\0\3"s +
      "\0\0\0\0\0\0\0\1"s + "\0\0\0\0\0\0\0\3b c"s +
      "\0\0\0\0"s + "\0\0\0\1"s + "\xff\xff\xff\xff"s;
  EXPECT_EQ(SerializeTokenizer(SmallTokenizer()), expected);
  // Computed independently with Python's hashlib over the same layout.
  EXPECT_EQ(merkle::ToHex(TokenizerDigest(SmallTokenizer())),
            "568dd9317ba5396a3c260db70deaeceb4f2fe90a99d569233746850d1a291e03");
}

TEST(TokenizerDigestTest, ChangesWithEveryField) {
  const merkle::Hash base = TokenizerDigest(SmallTokenizer());
  std::vector<std::function<void(inference::TokenizerData&)>> mutations = {
      [](auto& t) { t.model = "gpt3"; },      [](auto& t) { t.pre = "deepseek-r1-qwen"; },
      [](auto& t) { t.tokens[1] = "bd"; },    [](auto& t) { t.token_types[0] = 3; },
      [](auto& t) { t.merges.clear(); },      [](auto& t) { t.bos_id = 1; },
      [](auto& t) { t.eos_id = 0; },          [](auto& t) { t.pad_id = 1; },
      // Moving a byte between adjacent strings must change the digest.
      [](auto& t) { t.tokens = {"ab", "c"}; },
  };
  for (size_t i = 0; i < mutations.size(); ++i) {
    inference::TokenizerData t = SmallTokenizer();
    mutations[i](t);
    EXPECT_NE(TokenizerDigest(t), base) << "mutation " << i;
  }
}

TEST(ModelIdentityTest, WeightsChangeTheModelDigestButNotTheTokenizerDigest) {
  auto dir_holder = FreshDir("identity");
  const testing::TempDir& dir = *dir_holder;
  const std::string a = testing::WriteTinyModel(dir, 1);
  const std::string b = testing::WriteTinyModel(dir, 2);
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  absl::StatusOr<ModelIdentity> ia = ReadModelIdentity(a);
  absl::StatusOr<ModelIdentity> ib = ReadModelIdentity(b);
  ASSERT_TRUE(ia.ok()) << ia.status();
  ASSERT_TRUE(ib.ok()) << ib.status();
  EXPECT_EQ(ia->name, "tiny-test");
  EXPECT_EQ(ia->model_digest, merkle::Sha256Of(std::string_view(ReadFile(a))));
  EXPECT_NE(ia->model_digest, ib->model_digest);
  EXPECT_EQ(ia->tokenizer_digest, ib->tokenizer_digest);
}

TEST(ModelIdentityTest, NotAModelFileIsAnError) {
  auto dir_holder = FreshDir("identity_bad");
  const testing::TempDir& dir = *dir_holder;
  WriteFile(dir / "x.gguf", "not a gguf file at all");
  EXPECT_FALSE(ReadModelIdentity((dir / "x.gguf").string()).ok());
  EXPECT_EQ(ReadModelIdentity((dir / "missing.gguf").string()).status().code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------- auth

TEST(BearerAuthTest, WithoutTokenEverythingPasses) {
  BearerAuth auth;
  EXPECT_FALSE(auth.required());
  EXPECT_TRUE(auth.Check(std::nullopt).ok());
  EXPECT_TRUE(auth.Check("Bearer whatever").ok());
}

TEST(BearerAuthTest, AcceptsOnlyTheExactToken) {
  BearerAuth auth("s3cret-token");
  EXPECT_TRUE(auth.required());
  EXPECT_TRUE(auth.Check("Bearer s3cret-token").ok());
  EXPECT_TRUE(auth.Check("bearer s3cret-token").ok());  // scheme is case-insensitive
  for (const char* bad : {"Bearer s3cret-toke", "Bearer s3cret-token ", "Bearer S3cret-token",
                          "Basic s3cret-token", "s3cret-token", "Bearer ", ""}) {
    absl::Status s = auth.Check(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << bad;
    EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("s3cret"))) << bad;
  }
  EXPECT_EQ(auth.Check(std::nullopt).code(), absl::StatusCode::kUnauthenticated);
}

TEST(BearerAuthTest, ReadsTokenFileTrimmingWhitespace) {
  auto dir_holder = FreshDir("token");
  const testing::TempDir& dir = *dir_holder;
  WriteSecretFile(dir / "token", "  abc123\n");
  absl::StatusOr<BearerAuth> auth = BearerAuth::FromFile((dir / "token").string());
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->Check("Bearer abc123").ok());
  EXPECT_FALSE(auth->Check("Bearer  abc123").ok());

  WriteSecretFile(dir / "empty", " \n");
  EXPECT_EQ(BearerAuth::FromFile((dir / "empty").string()).status().code(),
            absl::StatusCode::kInvalidArgument);
  WriteSecretFile(dir / "spaced", "abc 123\n");
  EXPECT_EQ(BearerAuth::FromFile((dir / "spaced").string()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BearerAuth::FromFile((dir / "missing").string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(BearerAuthTest, RefusesTokenFileReadableByOthers) {
  auto dir_holder = FreshDir("token-mode");
  const testing::TempDir& dir = *dir_holder;
  WriteFile(dir / "token", "abc123\n");
  std::filesystem::permissions(dir / "token", std::filesystem::perms(0644));
  absl::StatusOr<BearerAuth> auth = BearerAuth::FromFile((dir / "token").string());
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(auth.status().message()), HasSubstr("chmod 600"));
  std::filesystem::permissions(dir / "token", std::filesystem::perms(0600));
  EXPECT_TRUE(BearerAuth::FromFile((dir / "token").string()).ok());
}

// ---------------------------------------------------------------- event log

TEST(EventLogTest, WritesOneKeyValueLinePerEvent) {
  std::vector<std::string> lines;
  EventLog log([&](const std::string& line) { lines.push_back(line); },
               [] { return absl::FromUnixMillis(1767225600123); });
  log.Log("generate.sealed", {{"trace", "ab12"}, {"msg", "two words"}, {"q", "a=\"b\""}});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "ts=2026-01-01T00:00:00.123Z event=generate.sealed trace=ab12 "
            "msg=\"two words\" q=\"a=\\\"b\\\"\"\n");
  EXPECT_EQ(EventLog::FormatValue(""), "\"\"");
  EXPECT_EQ(EventLog::FormatValue("line\nbreak"), "\"line\\nbreak\"");
}

// ---------------------------------------------------------------- chat template

TEST(ChatPromptTest, SystemAndUserMatchTheR1Template) {
  absl::StatusOr<std::string> p = FormatChatPrompt({{"system", "Be brief."}, {"user", "2+2?"}});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, inference::FormatR1Prompt("Be brief.", "2+2?"));
  p = FormatChatPrompt({{"user", "2+2?"}});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, inference::FormatR1Prompt("", "2+2?"));
}

TEST(ChatPromptTest, MultiTurnClosesAssistantTurnsWithEndOfSentence) {
  absl::StatusOr<std::string> p =
      FormatChatPrompt({{"user", "1+1?"}, {"assistant", "2"}, {"user", "times 3?"}});
  ASSERT_TRUE(p.ok()) << p.status();
  const std::string bos = "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
  const std::string eos = "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
  const std::string user = "<\xEF\xBD\x9CUser\xEF\xBD\x9C>";
  const std::string assistant = "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>";
  EXPECT_EQ(*p, bos + user + "1+1?" + assistant + "2" + eos + user + "times 3?" + assistant +
                    "<think>\n");
}

TEST(ChatPromptTest, RejectsMalformedConversationsNamingTheMessage) {
  struct Case {
    std::vector<ChatTurn> messages;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{}, "empty"},
      {{{"user", "a"}, {"system", "s"}, {"user", "b"}}, "messages[1]"},
      {{{"user", "a"}, {"user", "b"}}, "messages[1]"},
      {{{"user", "a"}, {"assistant", "b"}}, "end with a user message"},
      {{{"robot", "a"}}, "messages[0].role"},
      {{{"system", "s"}, {"assistant", "a"}, {"user", "b"}}, "messages[1]"},
      {{{"user", ""}}, "messages[0].content"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::string> p = FormatChatPrompt(c.messages);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << c.expect;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.expect));
  }
}

}  // namespace
}  // namespace stepproof::service
