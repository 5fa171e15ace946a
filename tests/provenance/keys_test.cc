// Ed25519 keys: RFC 8032 section 7.1 test vectors (TEST 1, 2, 3, SHA(abc)),
// C2SP verifier keys, and the private key file's permissions.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "provenance/note.h"
#include "provenance/signer.h"
#include "provenance/verifier_key.h"
#include "test_util.h"

namespace stepproof::provenance {
namespace {

using testing::HexBytes;

struct Rfc8032Vector {
  const char* name;
  const char* seed;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032, section 7.1 (copied from the RFC's text).
constexpr Rfc8032Vector kRfc8032[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"TEST SHA(abc)",
     "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
     "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
};

TEST(Ed25519, SignerMatchesRfc8032Vectors) {
  for (const auto& v : kRfc8032) {
    SCOPED_TRACE(v.name);
    auto signer = Signer::FromSeed("rfc8032", HexBytes(v.seed));
    ASSERT_TRUE(signer.ok()) << signer.status();
    std::string pub(reinterpret_cast<const char*>(signer->public_key().data()),
                    32);
    EXPECT_EQ(absl::BytesToHexString(pub), v.public_key);
    std::string msg = absl::HexStringToBytes(v.message);
    auto sig = signer->Sign(msg);
    ASSERT_TRUE(sig.ok());
    EXPECT_EQ(absl::BytesToHexString(*sig), v.signature);
  }
}

TEST(Ed25519, VerifyAcceptsRfc8032VectorsAndRejectsFlippedBits) {
  for (const auto& v : kRfc8032) {
    SCOPED_TRACE(v.name);
    Ed25519PublicKey key;
    std::string raw = absl::HexStringToBytes(v.public_key);
    std::copy(raw.begin(), raw.end(), key.begin());
    std::string msg = absl::HexStringToBytes(v.message);
    std::string sig = absl::HexStringToBytes(v.signature);
    EXPECT_TRUE(Ed25519Verify(key, msg, sig));
    for (size_t i = 0; i < sig.size(); i += 7) {
      std::string bad = sig;
      bad[i] ^= 0x01;
      EXPECT_FALSE(Ed25519Verify(key, msg, bad)) << "byte " << i;
    }
    EXPECT_FALSE(Ed25519Verify(key, msg + "x", sig));
    EXPECT_FALSE(Ed25519Verify(key, msg, sig.substr(0, 63)));
  }
}

TEST(VerifierKey, ParsesTheC2spExampleKey) {
  auto v = NoteVerifier::FromVerifierKey(
      "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->name(), "example.com/foo");
  EXPECT_EQ(v->key_id(), 0x530d903au);
  EXPECT_EQ(v->verifier_key(),
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k");
}

TEST(VerifierKey, SignerKeyRoundTripsThroughItsString) {
  Signer s = testing::TestSigner();
  auto v = NoteVerifier::FromVerifierKey(s.verifier_key());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->public_key(), s.public_key());
  EXPECT_EQ(v->key_id(), s.key_id());
  auto sig = s.Sign("hello");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(v->Verify("hello", *sig));
  EXPECT_FALSE(v->Verify("hellO", *sig));
}

TEST(VerifierKey, RejectsMalformedKeys) {
  const std::string good =
      "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
  const char* bad[] = {
      "",
      "example.com/foo+530d903a",                                        // 2 parts
      "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  // id
      "example.com/fo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",   // name
      "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",   // 7 hex
      "example.com/foo+530d903g+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  // not hex
      "example.com/foo+530D903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  // uppercase
      "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",   // b64
      "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  // type
      "example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",      // space
  };
  EXPECT_TRUE(NoteVerifier::FromVerifierKey(good).ok());
  for (const char* k : bad) {
    EXPECT_FALSE(NoteVerifier::FromVerifierKey(k).ok()) << k;
  }
}

TEST(KeyName, RejectsSpacesPlusAndControls) {
  EXPECT_TRUE(IsValidKeyName("example.com/foo"));
  EXPECT_TRUE(IsValidKeyName("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidKeyName(""));
  EXPECT_FALSE(IsValidKeyName("a+b"));
  EXPECT_FALSE(IsValidKeyName("a b"));
  EXPECT_FALSE(IsValidKeyName("a\tb"));
  EXPECT_FALSE(IsValidKeyName("a\xc2\xa0z"));      // U+00A0 no-break space
  EXPECT_FALSE(IsValidKeyName("a\xe3\x80\x80z"));  // U+3000 ideographic space
  EXPECT_FALSE(IsValidKeyName("a\xffz"));          // not UTF-8
}

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/stepproof_keys_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/key.pem";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  std::string dir_, path_;
};

TEST_F(KeyFileTest, CreatesKeyWithMode0600AndLoadsItBack) {
  mode_t old = umask(0);  // even a permissive umask must not widen the mode
  bool created = false;
  auto first = Signer::LoadOrCreate(path_, "log.example", &created);
  umask(old);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(created);
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string pem = testing::ReadFile(path_);
  EXPECT_NE(pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);

  auto second = Signer::LoadOrCreate(path_, "log.example", &created);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(created);
  EXPECT_EQ(second->public_key(), first->public_key());
  EXPECT_EQ(second->verifier_key(), first->verifier_key());
}

TEST_F(KeyFileTest, RefusesGroupOrWorldReadableKey) {
  ASSERT_TRUE(Signer::LoadOrCreate(path_, "log.example").ok());
  for (mode_t mode : {0640, 0604, 0660, 0644, 0610}) {
    ASSERT_EQ(chmod(path_.c_str(), mode), 0);
    auto s = Signer::LoadOrCreate(path_, "log.example");
    ASSERT_FALSE(s.ok()) << std::oct << mode;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_NE(s.status().message().find("chmod 600"), absl::string_view::npos);
  }
  ASSERT_EQ(chmod(path_.c_str(), 0400), 0);
  EXPECT_TRUE(Signer::LoadOrCreate(path_, "log.example").ok());
}

TEST_F(KeyFileTest, RejectsAFileThatIsNotAnEd25519Key) {
  FILE* f = fopen(path_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("not a key\n", f);
  fclose(f);
  ASSERT_EQ(chmod(path_.c_str(), 0600), 0);
  auto s = Signer::LoadOrCreate(path_, "log.example");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(KeyFileTest, RejectsInvalidKeyNameAndMissingDirectory) {
  EXPECT_EQ(Signer::LoadOrCreate(path_, "bad name").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Signer::LoadOrCreate(dir_ + "/no/such/dir/key.pem", "a").ok());
  EXPECT_FALSE(Signer::FromSeed("a", std::vector<uint8_t>(31)).ok());
}

}  // namespace
}  // namespace stepproof::provenance
