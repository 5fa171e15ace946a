// Secrets and the real stepproofd: the signing key's file mode is enforced
// (group- or world-readable: the server refuses to start and says why); the
// logs (stdout + stderr) never hold the API token, a wrong token a client
// sent, the prompt text, or the private key (PEM body, raw seed in base64 or
// hex); mTLS on the binary with certificates made here with the openssl
// command line (tests/services covers TLS and mTLS in process, and
// tests/e2e TLS with the CLIs; this is the binary with --tls-client-ca).
#include <sys/stat.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/reliability/daemon.h"

namespace stepproof::reliability {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> BaseArgs(const TempDir& dir) {
  return {"--data-dir", dir / "data", "--listen", "127.0.0.1:0", "--threads", "1",
          "--max-tokens", "48", "--log-origin", "secrets.test/log"};
}

std::string RandomHex(int bytes) {
  std::random_device rd;
  std::string raw(bytes, '\0');
  for (char& c : raw) c = static_cast<char>(rd());
  return absl::BytesToHexString(raw);
}

// Starts and stops a server once so that the data dir holds a signing key.
void CreateKey(const TempDir& dir) {
  Daemon d(dir.path().string(), "create", BaseArgs(dir));
  ASSERT_FALSE(d.WaitListening(absl::Seconds(60)).empty()) << d.err();
  d.Signal(SIGTERM);
  ASSERT_EQ(d.Exited(absl::Seconds(30)), std::optional<int>(0)) << d.err();
}

TEST(SecretsTest, SigningKeyReadableByGroupOrOthersIsRefusedAtStart) {
  TempDir dir("keymode");
  CreateKey(dir);
  const std::string key = dir / "data/signing-key.pem";
  const std::string pem_before = ReadFile(key);
  for (mode_t mode : {0644, 0640, 0604, 0660, 0666}) {
    ASSERT_EQ(chmod(key.c_str(), mode), 0);
    Daemon d(dir.path().string(), absl::StrCat("mode", mode), BaseArgs(dir));
    std::optional<int> code = d.Exited(absl::Seconds(60));
    ASSERT_TRUE(code.has_value()) << "the server started with a key of mode " << mode;
    EXPECT_NE(*code, 0);
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    EXPECT_THAT(d.err(), HasSubstr(absl::StrCat("mode ", octal))) << d.err();
    EXPECT_THAT(d.err(), HasSubstr("chmod 600")) << d.err();
    EXPECT_THAT(d.err(), HasSubstr("signing-key.pem")) << d.err();
    EXPECT_FALSE(absl::StrContains(d.out(), "listening on"));
  }
  // Owner-only modes are accepted, and the key was neither replaced nor
  // rewritten by the refused starts.
  for (mode_t mode : {0400, 0600}) {
    ASSERT_EQ(chmod(key.c_str(), mode), 0);
    Daemon d(dir.path().string(), absl::StrCat("ok", mode), BaseArgs(dir));
    EXPECT_FALSE(d.WaitListening(absl::Seconds(60)).empty()) << d.err();
    EXPECT_FALSE(absl::StrContains(d.out(), "created signing key"));
  }
  EXPECT_EQ(ReadFile(key), pem_before);
}

TEST(SecretsTest, LogsHoldNoTokenPromptOrKeyMaterial) {
  TempDir dir("logs");
  const std::string token = "tok-" + RandomHex(16);
  const std::string wrong_token = "wrong-" + RandomHex(16);
  const std::string marker = "ZEBRA" + RandomHex(6);
  WriteFile(dir / "token", token + "\n");
  chmod((dir / "token").c_str(), 0600);
  std::vector<std::string> args = BaseArgs(dir);
  args.insert(args.end(), {"--api-token-file", dir / "token"});
  Daemon d(dir.path().string(), "server", args);
  const std::string address = d.WaitListening(absl::Seconds(60));
  ASSERT_FALSE(address.empty()) << d.err();
  auto stub = Connect(address);

  auto request = [&](const std::string& prompt) {
    v1::GenerateRequest r;
    r.set_prompt(prompt);
    r.set_max_tokens(48);
    r.mutable_sampling()->set_greedy(true);
    return r;
  };
  const std::string prompt = "What is 478 + 854? " + marker;
  // Accepted, with the prompt in the header and withheld.
  GenerateOutcome ok = RunGenerate(stub.get(), request(prompt), absl::Seconds(30), token);
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  ASSERT_TRUE(ok.sealed());
  v1::GenerateRequest withheld = request(prompt + " withheld");
  withheld.set_withhold_prompt(true);
  EXPECT_TRUE(RunGenerate(stub.get(), withheld, absl::Seconds(30), token).status.ok());
  // Refused: wrong token, no token, bad sampling with the prompt, chat
  // messages with a bad role holding the prompt, a too-long prompt.
  EXPECT_EQ(RunGenerate(stub.get(), request(prompt), absl::Seconds(30), wrong_token)
                .status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(RunGenerate(stub.get(), request(prompt)).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::GenerateRequest bad_sampling = request(prompt);
  bad_sampling.mutable_sampling()->set_greedy(false);
  bad_sampling.mutable_sampling()->set_top_p(7);
  EXPECT_EQ(RunGenerate(stub.get(), bad_sampling, absl::Seconds(30), token).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest chat;
  v1::ChatMessage* m = chat.add_messages();
  m->set_role("assistant");
  m->set_content(prompt);
  EXPECT_EQ(RunGenerate(stub.get(), chat, absl::Seconds(30), token).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(RunGenerate(stub.get(), request(std::string(70000, 'x') + marker), absl::Seconds(30),
                        token)
                .status.error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A client cut off mid-stream (the abort path logs a message too).
  {
    grpc::ClientContext c;
    c.AddMetadata("authorization", "Bearer " + token);
    auto reader = stub->Generate(&c, request(prompt));
    v1::GenerateEvent e;
    reader->Read(&e);
    c.TryCancel();
    (void)reader->Finish();
  }
  d.Signal(SIGTERM);
  ASSERT_EQ(d.Exited(absl::Seconds(30)), std::optional<int>(0)) << d.err();

  const std::string logs = d.out() + d.err();
  ASSERT_THAT(logs, HasSubstr("event=generate.sealed"));  // the logs were captured
  EXPECT_FALSE(absl::StrContains(logs, token)) << "the API token is in the logs";
  EXPECT_FALSE(absl::StrContains(logs, wrong_token)) << "a client's token is in the logs";
  EXPECT_FALSE(absl::StrContains(logs, marker)) << "the prompt is in the logs";
  EXPECT_FALSE(absl::StrContains(logs, "478 + 854")) << "the prompt is in the logs";

  // The private key: every line of the PEM body, and the raw 32-byte seed
  // (the end of the PKCS#8 DER) in base64 and hex.
  const std::string pem = ReadFile(dir / "data/signing-key.pem");
  std::string body;
  for (absl::string_view line : absl::StrSplit(pem, '\n')) {
    if (line.empty() || absl::StartsWith(line, "-----")) continue;
    EXPECT_FALSE(absl::StrContains(logs, line)) << "a line of the private key is in the logs";
    absl::StrAppend(&body, line);
  }
  std::string der;
  ASSERT_TRUE(absl::Base64Unescape(body, &der));
  ASSERT_GE(der.size(), 32u);
  const std::string seed = der.substr(der.size() - 32);
  EXPECT_FALSE(absl::StrContains(logs, absl::Base64Escape(seed).substr(0, 40)));
  EXPECT_FALSE(absl::StrContains(logs, absl::BytesToHexString(seed)));
  EXPECT_FALSE(absl::StrContains(logs, absl::BytesToHexString(seed).substr(0, 32)));
}

bool Shell(const std::string& command) { return std::system(command.c_str()) == 0; }

// A CA, a server certificate for 127.0.0.1 / localhost, a client certificate
// signed by the CA, and a client certificate signed by another CA.
bool MakeCertificates(const TempDir& dir) {
  const std::string d = dir.path().string();
  const std::string quiet = " >/dev/null 2>&1";
  auto ca = [&](const std::string& name) {
    return Shell(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                            "-keyout ", d, "/", name, ".key -out ", d, "/", name,
                            ".pem -days 2 -subj /CN=", name, quiet));
  };
  auto leaf = [&](const std::string& name, const std::string& issuer, const std::string& ext) {
    WriteFile(absl::StrCat(d, "/", name, ".ext"), ext);
    return Shell(absl::StrCat("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                            "-keyout ", d, "/", name, ".key -out ", d, "/", name,
                            ".csr -subj /CN=", name, quiet)) &&
           Shell(absl::StrCat("openssl x509 -req -in ", d, "/", name, ".csr -CA ", d, "/", issuer,
                            ".pem -CAkey ", d, "/", issuer, ".key -CAcreateserial -out ", d,
                            "/", name, ".pem -days 2 -extfile ", d, "/", name, ".ext", quiet));
  };
  return ca("ca") && ca("rogue-ca") &&
         leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n") &&
         leaf("client", "ca", "extendedKeyUsage=clientAuth\n") &&
         leaf("rogue-client", "rogue-ca", "extendedKeyUsage=clientAuth\n");
}

TEST(SecretsTest, MutualTlsOnTheBinaryAcceptsOnlyClientsTheCaSigned) {
  if (!Shell("openssl version >/dev/null 2>&1")) GTEST_SKIP() << "no openssl command line";
  TempDir dir("mtls");
  ASSERT_TRUE(MakeCertificates(dir));
  chmod((dir / "server.key").c_str(), 0600);
  std::vector<std::string> args = BaseArgs(dir);
  args.insert(args.end(), {"--tls-cert", dir / "server.pem", "--tls-key", dir / "server.key",
                           "--tls-client-ca", dir / "ca.pem"});
  Daemon d(dir.path().string(), "server", args);
  const std::string address = d.WaitListening(absl::Seconds(60));
  ASSERT_FALSE(address.empty()) << d.err();
  EXPECT_THAT(d.err(), HasSubstr("tls=true"));

  auto call = [&](std::shared_ptr<grpc::ChannelCredentials> creds) {
    auto stub = v1::StepProof::NewStub(grpc::CreateChannel(address, creds));
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetVerifierKeyResponse r;
    return stub->GetVerifierKey(&c, v1::GetVerifierKeyRequest(), &r);
  };
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = ReadFile(dir / "ca.pem");
  grpc::SslCredentialsOptions good = no_cert;
  good.pem_cert_chain = ReadFile(dir / "client.pem");
  good.pem_private_key = ReadFile(dir / "client.key");
  grpc::SslCredentialsOptions rogue = no_cert;
  rogue.pem_cert_chain = ReadFile(dir / "rogue-client.pem");
  rogue.pem_private_key = ReadFile(dir / "rogue-client.key");
  grpc::SslCredentialsOptions wrong_root;
  wrong_root.pem_root_certs = ReadFile(dir / "rogue-ca.pem");
  wrong_root.pem_cert_chain = good.pem_cert_chain;
  wrong_root.pem_private_key = good.pem_private_key;

  EXPECT_FALSE(call(grpc::InsecureChannelCredentials()).ok()) << "plaintext was served";
  EXPECT_FALSE(call(grpc::SslCredentials(no_cert)).ok()) << "no client certificate accepted";
  EXPECT_FALSE(call(grpc::SslCredentials(rogue)).ok()) << "a foreign CA's client accepted";
  EXPECT_FALSE(call(grpc::SslCredentials(wrong_root)).ok()) << "client trusted a foreign server";
  grpc::Status s = call(grpc::SslCredentials(good));
  EXPECT_TRUE(s.ok()) << s.error_message();
  // The TLS private key is not in the logs either.
  const std::string tls_key = ReadFile(dir / "server.key");
  for (absl::string_view line : absl::StrSplit(tls_key, '\n')) {
    if (line.size() < 16 || absl::StartsWith(line, "-----")) continue;
    EXPECT_FALSE(absl::StrContains(d.out() + d.err(), line));
  }
}

}  // namespace
}  // namespace stepproof::reliability
