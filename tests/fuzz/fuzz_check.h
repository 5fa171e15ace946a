// Shared by the fuzz targets: a property check that aborts, so libFuzzer and
// the replay driver both report the input that broke it.
#ifndef STEPPROOF_TESTS_FUZZ_FUZZ_CHECK_H_
#define STEPPROOF_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

namespace stepproof::fuzz {

// Aborts with `what` when `ok` is false: a property violation is a finding,
// just as a crash is.
inline void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace stepproof::fuzz

#endif  // STEPPROOF_TESTS_FUZZ_FUZZ_CHECK_H_
