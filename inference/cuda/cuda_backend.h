// The GPU inference backend: the CUDA engine (cuda_executor.h) behind
// continuous batching (inference/batched_backend.h). Built with or without
// CUDA: without it, or without a usable device, OpenCudaBackend says why and
// callers fall back to (or insist on) the CPU.
#ifndef STEPPROOF_INFERENCE_CUDA_CUDA_BACKEND_H_
#define STEPPROOF_INFERENCE_CUDA_CUDA_BACKEND_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "inference/backend.h"
#include "inference/batched_backend.h"

namespace stepproof::inference::cuda {

struct CudaBackendOptions {
  int32_t context_length = 0;  // per slot; 0 = the model's, capped at 4096
  int32_t slots = 8;           // sequences decoded together at most
  BatchedBackendOptions batching;
};

// Opens a GGUF model on the first CUDA device. Returns UNAVAILABLE when this
// build has no CUDA support or no usable device was found (with the probe's
// reason), UNIMPLEMENTED for what the CUDA engine does not run yet (naming
// it: Q4_K/Q6_K weights, llama, rope_freqs), RESOURCE_EXHAUSTED when the
// weights and KV cache do not fit the device, and otherwise as
// OpenCpuBackend (NOT_FOUND, INVALID_ARGUMENT, DATA_LOSS).
absl::StatusOr<std::unique_ptr<Backend>> OpenCudaBackend(const std::string& gguf_path,
                                                         const CudaBackendOptions& options);

}  // namespace stepproof::inference::cuda

#endif  // STEPPROOF_INFERENCE_CUDA_CUDA_BACKEND_H_
