// Device buffers and the skip-without-a-GPU fixture for the CUDA tests.
// Header-only test support.
#ifndef STEPPROOF_TESTS_INFERENCE_CUDA_CUDA_TEST_SUPPORT_H_
#define STEPPROOF_TESTS_INFERENCE_CUDA_CUDA_TEST_SUPPORT_H_

#include <cuda_runtime_api.h>

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "inference/cuda/device.h"

namespace stepproof::inference::cuda::testing {

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(const std::vector<T>& host) : n_(host.size()) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr_), std::max<size_t>(n_, 1) * sizeof(T)), cudaSuccess);
    if (n_ > 0) {
      EXPECT_EQ(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  explicit DeviceBuffer(size_t n) : DeviceBuffer(std::vector<T>(n)) {}
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() { return ptr_; }
  std::vector<T> ToHost() const {
    std::vector<T> host(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

// Skips every test of the suite, with the probe's reason, without a device.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<CudaDeviceInfo> device = ProbeCudaDevice();
    if (!device.ok()) GTEST_SKIP() << "no CUDA device: " << device.status().message();
  }
  std::vector<float> Random(size_t n, float scale = 1.0f) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng_);
    return v;
  }
  // |got - want| <= atol + rtol * |want| everywhere.
  static void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float atol, float rtol) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_LE(std::fabs(got[i] - want[i]), atol + rtol * std::fabs(want[i]))
          << "at " << i << ": gpu " << got[i] << " ref " << want[i];
    }
  }
  std::mt19937 rng_{20261123};
};

}  // namespace stepproof::inference::cuda::testing

#endif  // STEPPROOF_TESTS_INFERENCE_CUDA_CUDA_TEST_SUPPORT_H_
