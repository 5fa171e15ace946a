#include "inference/philox.h"

namespace stepproof::inference {
namespace {

constexpr uint32_t kM0 = 0xD2511F53;  // multipliers
constexpr uint32_t kM1 = 0xCD9E8D57;
constexpr uint32_t kW0 = 0x9E3779B9;  // Weyl key increments
constexpr uint32_t kW1 = 0xBB67AE85;

}  // namespace

PhiloxCounter Philox4x32(PhiloxCounter x, PhiloxKey k, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    if (r > 0) {  // key schedule: bump before every round but the first
      k[0] += kW0;
      k[1] += kW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kM0) * x[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * x[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32);
    const uint32_t lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32);
    const uint32_t lo1 = static_cast<uint32_t>(p1);
    x = {hi1 ^ x[1] ^ k[0], lo1, hi0 ^ x[3] ^ k[1], lo0};
  }
  return x;
}

double PhiloxUniform(uint64_t seed, uint64_t position) {
  const PhiloxCounter x = Philox4x32(
      {static_cast<uint32_t>(position), static_cast<uint32_t>(position >> 32),
       0, 0},
      {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  const uint64_t bits = (static_cast<uint64_t>(x[1]) << 32) | x[0];
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace stepproof::inference
