// Finding a usable CUDA device. Builds with or without CUDA: without it (or
// without a GPU, or with a driver too old for the runtime) the probe says so
// and callers use the CPU engine; nothing here ever aborts.
#ifndef STEPPROOF_INFERENCE_CUDA_DEVICE_H_
#define STEPPROOF_INFERENCE_CUDA_DEVICE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace stepproof::inference::cuda {

struct CudaDeviceInfo {
  int ordinal = 0;
  std::string name;          // e.g. "NVIDIA H100 80GB HBM3"
  int compute_capability = 0;  // major * 10 + minor, e.g. 90
  int64_t total_memory_bytes = 0;
};

// True when this binary was built with the CUDA engine (STEPPROOF_CUDA).
bool BuiltWithCuda();

// The first CUDA device. UNAVAILABLE, with the runtime's reason ("CUDA driver
// version is insufficient for CUDA runtime version", "no CUDA-capable device
// is detected", "this build has no CUDA support"), when there is none usable.
absl::StatusOr<CudaDeviceInfo> ProbeCudaDevice();

}  // namespace stepproof::inference::cuda

#endif  // STEPPROOF_INFERENCE_CUDA_DEVICE_H_
