// Philox4x32-10 counter-based random number generator (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", SC'11), bit-identical to
// Random123's philox4x32 with 10 rounds. Pure function of (counter, key): no
// state, so a GPU kernel and a verifier reproduce every draw.
//
// Thread-safety: pure functions.

#ifndef STEPPROOF_INFERENCE_PHILOX_H_
#define STEPPROOF_INFERENCE_PHILOX_H_

#include <array>
#include <cstdint>

namespace stepproof::inference {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// One Philox4x32 block with `rounds` rounds (10 is the standard; other
// values exist only for the Random123 known-answer tests).
PhiloxCounter Philox4x32(PhiloxCounter counter, PhiloxKey key, int rounds = 10);

// The uniform draw used by the sampler (docs/DECODING.md):
//   x = Philox4x32-10(counter = (pos lo32, pos hi32, 0, 0),
//                     key = (seed lo32, seed hi32))
//   u = ((uint64(x[1]) << 32 | x[0]) >> 11) * 2^-53
// a double in [0, 1) with 53 random bits, exact in IEEE-754 binary64.
double PhiloxUniform(uint64_t seed, uint64_t position);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_PHILOX_H_
