// e2e_tiny_model PATH: writes a tiny random Qwen2-architecture GGUF (with the
// byte-level test tokenizer) so the end-to-end tests can run stepproofd in a
// build that has no embedded model. Its text is noise; the tests check the
// provenance of whatever it says, not the words.
#include <cstdio>
#include <string>

#include "tests/inference/test_models.h"

int main(int argc, char** argv) {
  if (argc == 2 && (std::string(argv[1]) == "--help" ||
                    std::string(argv[1]) == "-h")) {
    std::printf("usage: e2e_tiny_model PATH.gguf\n"
                "writes a tiny random Qwen2 GGUF for the end-to-end tests\n");
    return 0;
  }
  if (argc != 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: e2e_tiny_model PATH.gguf\n");
    return 2;
  }
  stepproof::inference::testing::TinyModelSpec spec;
  spec.n_embd = 64;
  spec.n_ff = 128;
  spec.context_length = 512;
  absl::Status s =
      stepproof::inference::testing::TinyModel(spec).WriteFile(argv[1]);
  if (!s.ok()) {
    std::fprintf(stderr, "e2e_tiny_model: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
