#include "inference/cuda/device.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#ifdef STEPPROOF_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace stepproof::inference::cuda {

#ifdef STEPPROOF_HAVE_CUDA

bool BuiltWithCuda() { return true; }

absl::StatusOr<CudaDeviceInfo> ProbeCudaDevice() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error for later callers
    return absl::UnavailableError(
        absl::StrCat("no usable CUDA device: ", cudaGetErrorString(err)));
  }
  if (count == 0) {
    return absl::UnavailableError("no usable CUDA device: none found");
  }
  cudaDeviceProp prop;
  err = cudaGetDeviceProperties(&prop, 0);
  if (err != cudaSuccess) {
    return absl::UnavailableError(absl::StrCat(
        "cannot read CUDA device 0 properties: ", cudaGetErrorString(err)));
  }
  CudaDeviceInfo info;
  info.ordinal = 0;
  info.name = prop.name;
  info.compute_capability = prop.major * 10 + prop.minor;
  info.total_memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  return info;
}

#else

bool BuiltWithCuda() { return false; }

absl::StatusOr<CudaDeviceInfo> ProbeCudaDevice() {
  return absl::UnavailableError(
      "this build has no CUDA support (configured with STEPPROOF_CUDA=OFF or "
      "without nvcc)");
}

#endif

}  // namespace stepproof::inference::cuda
