// File reading for tests that link only the verify library.
#ifndef STEPPROOF_TESTS_PROVENANCE_TEST_UTIL_FILES_H_
#define STEPPROOF_TESTS_PROVENANCE_TEST_UTIL_FILES_H_

#include <fstream>
#include <sstream>
#include <string>

namespace stepproof::provenance::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace stepproof::provenance::testing

#endif  // STEPPROOF_TESTS_PROVENANCE_TEST_UTIL_FILES_H_
