// Host-side preparation of weights for the CUDA engine: layouts the device
// kernels read (decode_kernels_raw.h). Pure functions; built with or without
// CUDA so they are tested everywhere.
#ifndef STEPPROOF_INFERENCE_CUDA_WEIGHTS_H_
#define STEPPROOF_INFERENCE_CUDA_WEIGHTS_H_

#include <cstdint>

namespace stepproof::inference::cuda {

// Splits a ggml Q8_0 matrix (rows x cols/32 blocks of {fp16 scale, 32 int8},
// 34 bytes each) into qs (rows x cols int8, row-major) and scales (rows x
// cols/32 fp16 bits). REQUIRES: cols % 32 == 0; qs, scales sized so.
void RepackQ8_0(const uint8_t* ggml, int64_t rows, int64_t cols, int8_t* qs, uint16_t* scales);

}  // namespace stepproof::inference::cuda

#endif  // STEPPROOF_INFERENCE_CUDA_WEIGHTS_H_
