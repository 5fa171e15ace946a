// Warp- and block-wide reductions for the CUDA kernels (kernels.cu,
// decode_kernels.cu). Butterfly shuffles (__shfl_xor_sync, offsets 16, 8,
// 4, 2, 1), so every lane of a warp, and with BlockReduce every thread of the
// block, gets the same result in the same summation order.
// Device code only; include from .cu files.
#ifndef STEPPROOF_INFERENCE_CUDA_REDUCE_CUH_
#define STEPPROOF_INFERENCE_CUDA_REDUCE_CUH_

#include <cfloat>

namespace stepproof::inference::cuda::raw {

inline constexpr int kWarp = 32;

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxFloatOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return b > a ? b : a; }
};

template <typename T, typename Op>
__device__ __forceinline__ T WarpReduce(T v, Op op) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Every thread of the block gets op over all threads' v; `identity` stands
// for the warps a block of fewer than 32 warps lacks. Contains barriers: all
// threads of the block must call it. REQUIRES: blockDim.x % 32 == 0.
template <typename T, typename Op>
__device__ T BlockReduce(T v, T identity, Op op) {
  __shared__ T partial[32];
  __shared__ T total;
  v = WarpReduce(v, op);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T s = lane < blockDim.x / kWarp ? partial[lane] : identity;
    s = WarpReduce(s, op);
    if (lane == 0) total = s;
  }
  __syncthreads();
  const T result = total;
  __syncthreads();
  return result;
}

__device__ __forceinline__ float WarpSum(float v) { return WarpReduce(v, SumOp()); }

template <typename T>
__device__ __forceinline__ T BlockSum(T v) { return BlockReduce(v, T(0), SumOp()); }

__device__ __forceinline__ float BlockMax(float v) { return BlockReduce(v, -FLT_MAX, MaxFloatOp()); }

__device__ __forceinline__ unsigned long long BlockMax(unsigned long long v) {
  return BlockReduce(v, 0ull, MaxOp());
}

}  // namespace stepproof::inference::cuda::raw

#endif  // STEPPROOF_INFERENCE_CUDA_REDUCE_CUH_
