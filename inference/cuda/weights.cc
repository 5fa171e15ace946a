#include "inference/cuda/weights.h"

#include <cstring>

namespace stepproof::inference::cuda {

void RepackQ8_0(const uint8_t* ggml, int64_t rows, int64_t cols, int8_t* qs, uint16_t* scales) {
  const int64_t blocks = cols / 32;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* block = ggml + (r * blocks + b) * 34;
      std::memcpy(&scales[r * blocks + b], block, 2);
      std::memcpy(&qs[r * cols + b * 32], block + 2, 32);
    }
  }
}

}  // namespace stepproof::inference::cuda
