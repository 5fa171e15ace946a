// Top-k selection, polynomial interpolation over GF(65497), the step
// fingerprint byte layout and the tolerant comparison.

#include "inference/fingerprint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "inference/tensor_type.h"

namespace stepproof::inference {
namespace {

constexpr uint32_t kP = kFingerprintPrime;

uint32_t MulMod(uint32_t a, uint32_t b) { return static_cast<uint32_t>((uint64_t{a} * b) % kP); }
uint32_t AddMod(uint32_t a, uint32_t b) { return (a + b) % kP; }
uint32_t PowMod(uint32_t a, uint32_t e) {
  uint32_t r = 1;
  while (e) {
    if (e & 1) r = MulMod(r, a);
    a = MulMod(a, a);
    e >>= 1;
  }
  return r;
}
uint32_t InvMod(uint32_t a) { return PowMod(a, kP - 2); }  // REQUIRES: a % kP != 0

float Magnitude(float v) { return std::isnan(v) ? 0.0f : std::fabs(v); }

// Coefficients of the polynomial of degree < n through (xs[i], ys[i]):
//   F(x) = sum_i s_i M(x) / (x - x_i),  M(x) = prod_i (x - x_i),
//   s_i = y_i / prod_{j != i} (x_i - x_j).
// With M(x)/(x - x_i) = sum_j q_ij x^j, q_i,n-1 = m_n, q_i,j-1 = m_j + x_i q_ij,
// the coefficient c_j-1 = sum_i s_i q_i,j-1. Every loop below runs over
// independent lanes i (no carried dependency), which keeps a chunk's
// interpolation in the tens of microseconds. All values stay below p < 2^16,
// so a*b + c < 2^32 for reduced a, b, c.
// REQUIRES: the xs are distinct residues.
ChunkFingerprint Interpolate(const std::vector<uint32_t>& xs, const std::vector<uint32_t>& ys) {
  const size_t n = xs.size();
  // M's coefficients, m[j] of x^j, degree n.
  std::vector<uint32_t> m(n + 1, 0), next(n + 1, 0);
  m[0] = 1;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t neg = (kP - xs[i]) % kP;
    next[0] = (m[0] * neg) % kP;
    for (size_t j = 1; j <= i + 1; ++j) next[j] = (m[j] * neg + m[j - 1]) % kP;
    std::swap(m, next);
  }
  // w_i = prod_{j != i} (x_i - x_j) = M'(x_i), by Horner over M' for all i
  // at once: acc_i <- acc_i x_i + d_j (d_j = j m_j); s_i = y_i / w_i.
  std::vector<uint32_t> acc(n, 0);
  for (size_t j = n; j > 0; --j) {
    const uint32_t d = static_cast<uint32_t>((uint64_t{j} * m[j]) % kP);
    for (size_t i = 0; i < n; ++i) acc[i] = (acc[i] * xs[i] + d) % kP;
  }
  std::vector<uint32_t> sc(n), u(n, 0);
  for (size_t i = 0; i < n; ++i) sc[i] = (ys[i] * InvMod(acc[i])) % kP;
  // u_i <- m_j + x_i u_i gives q_i,j-1; c_j-1 = sum_i s_i q_i,j-1.
  ChunkFingerprint fp{};
  for (size_t j = n; j > 0; --j) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; ++i) {
      u[i] = (xs[i] * u[i] + m[j]) % kP;
      sum += uint64_t{sc[i]} * u[i];
    }
    fp[j - 1] = static_cast<uint16_t>(sum % kP);
  }
  return fp;
}

void PutU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

}  // namespace

uint16_t FingerprintBf16(float f) {
  if (std::isnan(f)) return 0x7FC0;
  return FloatToBf16(f);
}

std::vector<FingerprintEntry> SelectFingerprintEntries(absl::Span<const float> values) {
  const uint64_t n = values.size();
  // Sort keys: ascending key = descending |v|, then ascending index (the
  // bits of a non-negative float order like its value).
  std::vector<uint64_t> keys(n);
  for (uint64_t i = 0; i < n; ++i) {
    const float m = Magnitude(values[i]);
    uint32_t bits;
    std::memcpy(&bits, &m, sizeof bits);
    keys[i] = (uint64_t{~bits} << 32) | i;
  }
  auto index_of = [](uint64_t key) { return key & 0xffffffffu; };
  std::vector<FingerprintEntry> out;
  out.reserve(kFingerprintTopK);
  const uint64_t k = std::min<uint64_t>(n, kFingerprintTopK);
  if (n <= kP) {  // no two indices share a residue
    std::nth_element(keys.begin(), keys.begin() + k, keys.end());
    std::sort(keys.begin(), keys.begin() + k);
    for (uint64_t j = 0; j < k; ++j) {
      const uint64_t idx = index_of(keys[j]);
      out.push_back(FingerprintEntry{idx, FingerprintBf16(values[idx])});
    }
    return out;
  }
  // Collisions are possible: walk a growing sorted prefix, skipping taken
  // residues.
  std::vector<uint8_t> taken(kP, 0);
  uint64_t sorted = 0;
  for (uint64_t pos = 0; pos < n && out.size() < static_cast<size_t>(kFingerprintTopK); ++pos) {
    if (pos == sorted) {
      const uint64_t want = std::min<uint64_t>(n, std::max<uint64_t>(2 * kFingerprintTopK, 2 * sorted));
      std::partial_sort(keys.begin() + sorted, keys.begin() + want, keys.end());
      sorted = want;
    }
    const uint64_t idx = index_of(keys[pos]);
    uint8_t& t = taken[idx % kP];
    if (t) continue;
    t = 1;
    out.push_back(FingerprintEntry{idx, FingerprintBf16(values[idx])});
  }
  return out;
}

ChunkFingerprint MakeChunkFingerprint(absl::Span<const float> values) {
  const std::vector<FingerprintEntry> entries = SelectFingerprintEntries(values);
  std::vector<uint32_t> xs, ys;
  xs.reserve(kFingerprintTopK);
  ys.reserve(kFingerprintTopK);
  for (const FingerprintEntry& e : entries) {
    xs.push_back(static_cast<uint32_t>(e.index % kP));
    ys.push_back(e.bf16);
  }
  // Padding points: fewer than 128 values means every index < 128, so the
  // residues 65496, 65495, ... are free.
  for (uint32_t x = kP - 1; xs.size() < static_cast<size_t>(kFingerprintTopK); --x) {
    xs.push_back(x);
    ys.push_back(0);
  }
  return Interpolate(xs, ys);
}

uint32_t EvaluateFingerprint(const ChunkFingerprint& fp, uint32_t x) {
  x %= kP;
  uint32_t acc = 0;
  for (int j = kFingerprintTopK; j > 0; --j) acc = AddMod(MulMod(acc, x), fp[j - 1] % kP);
  return acc;
}

FingerprintTolerance CrossDeviceTolerance() { return FingerprintTolerance{}; }

FingerprintTolerance SameEngineTolerance() {
  FingerprintTolerance t;
  t.min_exponent_matches = kFingerprintTopK;
  t.max_mean_mantissa_diff = 0;
  t.max_median_mantissa_diff = 0;
  return t;
}

FingerprintTolerance CpuKernelTolerance() {
  FingerprintTolerance t;
  t.min_exponent_matches = 120;
  t.max_mean_mantissa_diff = 0.1;
  t.max_median_mantissa_diff = 1;
  return t;
}

FingerprintComparison CompareChunkFingerprint(const ChunkFingerprint& claimed, absl::Span<const float> values,
                                              const FingerprintTolerance& tolerance) {
  FingerprintComparison c;
  const std::vector<FingerprintEntry> own = SelectFingerprintEntries(values);
  c.entries = static_cast<int>(own.size());
  // The claimed polynomial at every own index: Horner's rule over all points
  // at once (independent uint32 lanes the compiler vectorises; acc * x + c <
  // kP * kP < 2^32), the same values as EvaluateFingerprint.
  const size_t n = own.size();
  std::vector<uint32_t> xs(n), acc(n, 0);
  for (size_t i = 0; i < n; ++i) xs[i] = static_cast<uint32_t>(own[i].index % kP);
  for (int j = kFingerprintTopK; j > 0; --j) {
    const uint32_t coef = claimed[j - 1] % kP;
    for (size_t i = 0; i < n; ++i) acc[i] = (acc[i] * xs[i] + coef) % kP;
  }
  std::vector<int> diffs;
  diffs.reserve(own.size());
  for (size_t i = 0; i < n; ++i) {
    const FingerprintEntry& e = own[i];
    const uint32_t y = acc[i];
    if ((y >> 7) != (static_cast<uint32_t>(e.bf16) >> 7)) continue;  // sign + exponent
    diffs.push_back(std::abs(static_cast<int>(y & 0x7F) - static_cast<int>(e.bf16 & 0x7F)));
  }
  c.exponent_matches = static_cast<int>(diffs.size());
  if (diffs.empty()) {
    c.mean_mantissa_diff = c.median_mantissa_diff = std::numeric_limits<double>::infinity();
  } else {
    c.mean_mantissa_diff = std::accumulate(diffs.begin(), diffs.end(), 0.0) / diffs.size();
    std::sort(diffs.begin(), diffs.end());
    const size_t h = diffs.size() / 2;
    c.median_mantissa_diff = diffs.size() % 2 ? diffs[h] : (diffs[h - 1] + diffs[h]) / 2.0;
  }
  // With fewer than 128 values, every entry must match as often as the
  // tolerance asks of 128 (scaled down).
  const int need = c.entries >= kFingerprintTopK
                       ? tolerance.min_exponent_matches
                       : static_cast<int>(std::ceil(static_cast<double>(tolerance.min_exponent_matches) *
                                                    c.entries / kFingerprintTopK));
  c.passed = c.entries > 0 && c.exponent_matches >= need &&
             c.mean_mantissa_diff <= tolerance.max_mean_mantissa_diff &&
             c.median_mantissa_diff <= tolerance.max_median_mantissa_diff;
  return c;
}

std::string EncodeStepFingerprint(const StepFingerprint& fp) {
  std::string out;
  out.reserve(8 + kChunkFingerprintBytes * (fp.chunks.size() + 1));
  out.push_back(static_cast<char>(kStepFingerprintVersion));
  out.push_back(static_cast<char>(fp.prompt ? 1 : 0));
  if (fp.prompt) {
    for (uint16_t c : *fp.prompt) PutU16(out, c);
  }
  const uint32_t first = fp.chunks.empty() ? 0 : fp.first_chunk;
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((first >> s) & 0xff));
  PutU16(out, static_cast<uint16_t>(fp.chunks.size()));
  for (const ChunkFingerprint& chunk : fp.chunks) {
    for (uint16_t c : chunk) PutU16(out, c);
  }
  return out;
}

absl::StatusOr<StepFingerprint> DecodeStepFingerprint(std::string_view bytes) {
  size_t at = 0;
  auto need = [&](size_t n, const char* what) -> absl::Status {
    if (bytes.size() - at < n) {
      return absl::InvalidArgumentError(absl::StrCat("step fingerprint truncated in ", what));
    }
    return absl::OkStatus();
  };
  auto u8 = [&]() { return static_cast<uint8_t>(bytes[at++]); };
  auto chunk = [&](ChunkFingerprint* fp, const char* what) -> absl::Status {
    if (absl::Status s = need(kChunkFingerprintBytes, what); !s.ok()) return s;
    for (int i = 0; i < kFingerprintTopK; ++i) {
      const uint16_t c = static_cast<uint16_t>(u8() << 8);
      (*fp)[i] = static_cast<uint16_t>(c | u8());
      if ((*fp)[i] >= kP) {
        return absl::InvalidArgumentError(absl::StrCat("step fingerprint ", what, ": coefficient ", i,
                                                       " is not below 65497"));
      }
    }
    return absl::OkStatus();
  };
  StepFingerprint fp;
  if (absl::Status s = need(2, "version and flags"); !s.ok()) return s;
  const uint8_t version = u8();
  if (version != kStepFingerprintVersion) {
    return absl::InvalidArgumentError(absl::StrCat("step fingerprint version ", version, " is not 1"));
  }
  const uint8_t flags = u8();
  if (flags > 1) return absl::InvalidArgumentError(absl::StrCat("step fingerprint flags ", flags, " are not 0 or 1"));
  if (flags & 1) {
    fp.prompt.emplace();
    if (absl::Status s = chunk(&*fp.prompt, "prompt"); !s.ok()) return s;
  }
  if (absl::Status s = need(6, "chunk range"); !s.ok()) return s;
  for (int i = 0; i < 4; ++i) fp.first_chunk = (fp.first_chunk << 8) | u8();
  uint32_t n = u8();
  n = (n << 8) | u8();
  if (n == 0 && fp.first_chunk != 0) {
    return absl::InvalidArgumentError("step fingerprint: first_chunk must be 0 when there are no chunks");
  }
  if (uint64_t{fp.first_chunk} + n > (uint64_t{1} << 32)) {
    return absl::InvalidArgumentError("step fingerprint: chunk indices overflow");
  }
  fp.chunks.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    if (absl::Status s = chunk(&fp.chunks[i], "chunk"); !s.ok()) return s;
  }
  if (at != bytes.size()) return absl::InvalidArgumentError("step fingerprint has trailing bytes");
  return fp;
}

}  // namespace stepproof::inference
