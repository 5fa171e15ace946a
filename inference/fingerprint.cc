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
uint32_t SubMod(uint32_t a, uint32_t b) { return (a + kP - b) % kP; }
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

// Coefficients of the polynomial of degree < n through (xs[i], ys[i]).
// REQUIRES: the xs are distinct residues.
ChunkFingerprint Interpolate(const std::vector<uint32_t>& xs, const std::vector<uint32_t>& ys) {
  const size_t n = xs.size();
  // M(x) = prod (x - xs[i]), degree n; m[j] is the coefficient of x^j.
  std::vector<uint32_t> m(n + 1, 0);
  m[0] = 1;
  for (size_t i = 0; i < n; ++i) {
    // m *= (x - xs[i])
    for (size_t j = i + 1; j > 0; --j) m[j] = SubMod(m[j - 1], MulMod(m[j], xs[i]));
    m[0] = SubMod(0, MulMod(m[0], xs[i]));
  }
  std::vector<uint32_t> coef(n, 0), q(n, 0);
  for (size_t i = 0; i < n; ++i) {
    // q = M / (x - xs[i]) by synthetic division (degree n - 1).
    uint32_t carry = m[n];
    for (size_t j = n; j > 0; --j) {
      q[j - 1] = carry;
      carry = AddMod(m[j - 1], MulMod(carry, xs[i]));
    }
    // q(xs[i]) = prod_{j != i} (xs[i] - xs[j]).
    uint32_t denom = 0;
    for (size_t j = n; j > 0; --j) denom = AddMod(MulMod(denom, xs[i]), q[j - 1]);
    const uint32_t scale = MulMod(ys[i], InvMod(denom));
    if (scale == 0) continue;
    for (size_t j = 0; j < n; ++j) coef[j] = AddMod(coef[j], MulMod(scale, q[j]));
  }
  ChunkFingerprint fp{};
  for (size_t j = 0; j < n; ++j) fp[j] = static_cast<uint16_t>(coef[j]);
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
  auto before = [&values](uint64_t a, uint64_t b) {
    const float ma = Magnitude(values[a]), mb = Magnitude(values[b]);
    if (ma != mb) return ma > mb;
    return a < b;
  };
  std::vector<uint64_t> order(n);
  std::iota(order.begin(), order.end(), uint64_t{0});
  std::vector<FingerprintEntry> out;
  out.reserve(kFingerprintTopK);
  std::vector<uint8_t> taken;  // residues already used (only when n > kP)
  if (n > kP) taken.assign(kP, 0);
  // Sort a growing prefix: collisions (only possible when n > 65497) may need
  // more than 128 candidates.
  uint64_t sorted = 0;
  uint64_t want = std::min<uint64_t>(n, 2 * kFingerprintTopK);
  for (uint64_t pos = 0; pos < n && out.size() < static_cast<size_t>(kFingerprintTopK); ++pos) {
    if (pos == sorted) {
      want = std::min<uint64_t>(n, std::max<uint64_t>(want, 2 * sorted));
      if (want <= sorted) want = n;
      std::partial_sort(order.begin() + sorted, order.begin() + want, order.end(), before);
      sorted = want;
    }
    const uint64_t idx = order[pos];
    if (!taken.empty()) {
      uint8_t& t = taken[idx % kP];
      if (t) continue;
      t = 1;
    }
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

FingerprintComparison CompareChunkFingerprint(const ChunkFingerprint& claimed, absl::Span<const float> values,
                                              const FingerprintTolerance& tolerance) {
  FingerprintComparison c;
  const std::vector<FingerprintEntry> own = SelectFingerprintEntries(values);
  c.entries = static_cast<int>(own.size());
  std::vector<int> diffs;
  diffs.reserve(own.size());
  for (const FingerprintEntry& e : own) {
    const uint32_t y = EvaluateFingerprint(claimed, static_cast<uint32_t>(e.index % kP));
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
