// Incremental UTF-8 decoding for streamed model output.
//
// Tokens carry bytes, and one character may be split across tokens. A
// Utf8StreamDecoder accepts bytes in arbitrary chunks and returns only
// complete, valid UTF-8; an incomplete trailing sequence is held back until
// the next chunk. Invalid bytes become U+FFFD (EF BF BD) following the
// WHATWG / Unicode "maximal subpart" rule: each maximal prefix of a valid
// sequence that cannot be completed is replaced by one U+FFFD.
//
// Thread-safety: not thread-safe; one decoder per stream.

#ifndef STEPPROOF_INFERENCE_UTF8_H_
#define STEPPROOF_INFERENCE_UTF8_H_

#include <string>
#include <string_view>

namespace stepproof::inference {

class Utf8StreamDecoder {
 public:
  // Appends `bytes` and returns the text that is now complete.
  std::string Push(std::string_view bytes);
  // Returns what is held back (an incomplete sequence) as U+FFFD, and resets.
  std::string Finish();
  // Number of bytes held back waiting for continuation bytes (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string pending_;
};

// Converts arbitrary bytes to valid UTF-8 with the same U+FFFD rule
// (equivalent to one Push followed by Finish).
std::string SanitizeUtf8(std::string_view bytes);

// True if `bytes` is entirely valid UTF-8 (no surrogates, no overlongs,
// max U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_UTF8_H_
