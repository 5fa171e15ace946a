// Links only stepproof_provenance_verify (no signer, no SQLite, no engine) and
// verifies the committed vector bundles: the verify side stands alone.
#include <string>

#include "gtest/gtest.h"
#include "provenance/verifier.h"
#include "provenance/verifier_key.h"
#include "test_util_files.h"

namespace stepproof::provenance {
namespace {

TEST(VerifyOnly, VerifiesTheVectorBundlesWithTheVerifyLibraryAlone) {
  const std::string dir = "tests/provenance/vectors/";
  std::string vkey = testing::ReadFile(dir + "verifier_key.txt");
  ASSERT_FALSE(vkey.empty());
  vkey.pop_back();  // trailing newline
  auto key = NoteVerifier::FromVerifierKey(vkey);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_TRUE(VerifyBundleJson(testing::ReadFile(dir + "bundle.json"), *key).ok());
  EXPECT_TRUE(
      VerifyBundleJson(testing::ReadFile(dir + "bundle_header.json"), *key).ok());
  EXPECT_FALSE(
      VerifyBundleJson(testing::ReadFile(dir + "bundle_tampered.json"), *key).ok());
}

}  // namespace
}  // namespace stepproof::provenance
