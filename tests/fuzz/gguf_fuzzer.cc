// Fuzz target: the GGUF reader (inference/gguf.h) and the tokenizer loaded
// from GGUF metadata (inference/gguf_tokenizer.h).
//
// GgufFile reads only files, so each input is written to a memfd and opened
// through /proc/self/fd/N (a regular file; nothing touches the disk).
//
// Properties of an accepted file, computed here with 128-bit arithmetic and
// ggml's block sizes written out independently of inference/:
//   - version 2 or 3; alignment a power of two; data offset aligned;
//   - each tensor: 1..4 dimensions, all positive; n_elements is their product;
//     n_bytes is exactly n_elements / block values * block bytes; its data
//     lies inside the file at an aligned offset and the data pointer shows
//     the input's bytes there; no two tensors overlap;
//   - every metadata key is found by Find and the typed accessors agree with
//     its type (integer arrays widen to array_count values);
//   - if the tokenizer metadata loads, encoded ids lie in the vocabulary.

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "inference/bpe_tokenizer.h"
#include "inference/gguf.h"
#include "inference/gguf_tokenizer.h"

namespace inf = stepproof::inference;
using stepproof::fuzz::Check;

namespace {

// ggml block sizes (values, bytes) by raw type number; {0, 0} if unknown.
std::pair<uint64_t, uint64_t> Block(uint32_t ggml_type) {
  switch (ggml_type) {
    case 0: return {1, 4};       // F32
    case 1: return {1, 2};       // F16
    case 8: return {32, 34};     // Q8_0
    case 12: return {256, 144};  // Q4_K
    case 14: return {256, 210};  // Q6_K
    case 30: return {1, 2};      // BF16
    default: return {0, 0};
  }
}

void CheckFile(const inf::GgufFile& f, const uint8_t* data, size_t size) {
  Check(f.version() == 2 || f.version() == 3, "version is 2 or 3");
  Check(f.file_size() == size, "file_size is the input size");
  const uint64_t a = f.alignment();
  Check(a != 0 && (a & (a - 1)) == 0, "alignment is a power of two");
  Check(f.data_offset() % a == 0, "data offset is aligned");

  struct Span { unsigned __int128 begin, end; };
  std::vector<Span> spans;
  for (const inf::GgufTensor& t : f.tensors()) {
    Check(!t.ne.empty() && t.ne.size() <= inf::kGgufMaxDims, "1..4 dimensions");
    unsigned __int128 n = 1;
    for (int64_t d : t.ne) {
      Check(d > 0, "dimensions are positive");
      n *= static_cast<unsigned __int128>(d);
      Check(n <= static_cast<unsigned __int128>(INT64_MAX), "element count fits int64");
    }
    Check(static_cast<unsigned __int128>(t.n_elements) == n, "n_elements is the product of ne");
    const auto [values, bytes] = Block(static_cast<uint32_t>(t.type));
    Check(values != 0, "tensor type is one the engine supports");
    Check(static_cast<uint64_t>(t.ne[0]) % values == 0, "rows are whole blocks");
    const unsigned __int128 exact = n / values * bytes;
    Check(static_cast<unsigned __int128>(t.n_bytes) == exact,
          "n_bytes is exactly n_elements / block values * block bytes (no wrap-around)");
    Check(t.offset % a == 0, "tensor offset is aligned");
    Check(t.offset >= f.data_offset(), "tensor data follows the header");
    Check(static_cast<unsigned __int128>(t.offset) + exact <= size, "tensor data lies inside the file");
    Check(t.data != nullptr || exact == 0, "tensor data pointer is set");
    if (exact != 0) {
      Check(std::memcmp(t.data, data + t.offset, static_cast<size_t>(exact)) == 0,
            "tensor data pointer shows the file's bytes at its offset");
    }
    Check(f.FindTensor(t.name) == &t, "FindTensor finds each tensor");
    spans.push_back({t.offset, t.offset + exact});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) { return x.begin < y.begin; });
  for (size_t i = 1; i < spans.size(); ++i) {
    Check(spans[i - 1].end <= spans[i].begin, "tensors do not overlap");
  }

  for (const auto& [key, v] : f.metadata()) {
    Check(f.Find(key) == &v, "Find finds each key");
    const bool is_string = v.type == inf::GgufValueType::kString;
    Check(f.GetString(key).ok() == is_string, "GetString agrees with the type");
    if (is_string) Check(*f.GetString(key) == v.str, "GetString gives the value");
    const bool is_array = v.type == inf::GgufValueType::kArray;
    auto sa = f.GetStringArray(key);
    Check(sa.ok() == (is_array && v.array_type == inf::GgufValueType::kString),
          "GetStringArray agrees with the type");
    if (sa.ok()) {
      Check(sa->size() == v.array_count, "string array has array_count elements");
      size_t total = 0;
      for (std::string_view s : *sa) total += s.size();  // touch every view
      Check(total <= size, "string array elements fit in the file");
    }
    auto ia = f.GetIntArray(key);
    if (ia.ok()) {
      Check(is_array, "GetIntArray only for arrays");
      Check(ia->size() == v.array_count, "integer array has array_count elements");
    }
    (void)f.GetInt(key);
    (void)f.GetFloat(key);
  }

  absl::StatusOr<inf::BpeTokenizer> tok = inf::LoadTokenizer(f);
  if (tok.ok()) {
    for (const char* text : {"Hello, world! 12+30=42\n", "<think>step</think> caf\xc3\xa9"}) {
      for (int32_t id : tok->Encode(text)) {
        Check(id >= 0 && id < tok->vocab_size(), "encoded ids lie in the vocabulary");
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd_create("gguf_fuzz", MFD_CLOEXEC);
  Check(fd >= 0, "memfd_create works");
  size_t done = 0;
  while (done < size) {
    const ssize_t w = write(fd, data + done, size - done);
    Check(w > 0, "writing the memfd works");
    done += static_cast<size_t>(w);
  }
  absl::StatusOr<inf::GgufFile> f = inf::GgufFile::Open("/proc/self/fd/" + std::to_string(fd));
  close(fd);  // a mapping outlives its descriptor
  if (f.ok()) CheckFile(*f, data, size);
  return 0;
}
