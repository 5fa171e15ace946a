// The CLIs' connection options (clients/service_client.h): --token and
// --tls-ca arguments, and the error a call to a server that is not there
// gives (names the server, hints at --server).
#include "clients/service_client.h"

#include <cstdlib>
#include <string>

#include "clients/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stepproof::clients {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/clients_service_" + name;
}

TEST(ServiceClientOptionsTest, TakesTheTokenInlineOrFromAFileTrimmed) {
  absl::StatusOr<ServiceClientOptions> inline_token =
      MakeServiceClientOptions("h:1", "abc", "");
  ASSERT_TRUE(inline_token.ok());
  EXPECT_EQ(inline_token->token, "abc");
  EXPECT_EQ(inline_token->server, "h:1");
  EXPECT_TRUE(inline_token->tls_ca_pem.empty());

  std::string path = TempPath("token.txt");
  ASSERT_TRUE(WriteStringToFile(path, "  s3cret\n").ok());
  absl::StatusOr<ServiceClientOptions> file_token =
      MakeServiceClientOptions("h:1", "@" + path, "");
  ASSERT_TRUE(file_token.ok());
  EXPECT_EQ(file_token->token, "s3cret");
}

TEST(ServiceClientOptionsTest, ReadsTheCaFileAndNamesAMissingOne) {
  std::string path = TempPath("ca.pem");
  ASSERT_TRUE(WriteStringToFile(path, "-----BEGIN CERTIFICATE-----\n").ok());
  absl::StatusOr<ServiceClientOptions> tls =
      MakeServiceClientOptions("h:1", "", path);
  ASSERT_TRUE(tls.ok());
  EXPECT_EQ(tls->tls_ca_pem, "-----BEGIN CERTIFICATE-----\n");
  absl::StatusOr<ServiceClientOptions> missing =
      MakeServiceClientOptions("h:1", "", TempPath("no-such-ca.pem"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("no-such-ca.pem"));
}

TEST(ServiceClientTest, AnUnreachableServerIsUnavailableAndNamed) {
  ServiceClientOptions options;
  options.server = "127.0.0.1:1";  // nothing listens on port 1
  options.call_timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<ServiceClient>> client =
      ServiceClient::Create(options);
  ASSERT_TRUE(client.ok());
  absl::StatusOr<v1::GetVerifierKeyResponse> key = (*client)->GetVerifierKey();
  ASSERT_FALSE(key.ok());
  EXPECT_TRUE(absl::IsUnavailable(key.status())) << key.status();
  EXPECT_THAT(std::string(key.status().message()),
              HasSubstr("GetVerifierKey on 127.0.0.1:1"));
  EXPECT_THAT(std::string(key.status().message()), HasSubstr("--server"));
}

TEST(ServiceClientTest, RejectsAnEmptyAddress) {
  ServiceClientOptions options;
  options.server = "";
  EXPECT_FALSE(ServiceClient::Create(options).ok());
}

}  // namespace
}  // namespace stepproof::clients
