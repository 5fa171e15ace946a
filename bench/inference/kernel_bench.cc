// Single-thread throughput of the Q8_0 integer dot kernels (portable, AVX2,
// AVX-512 VNNI) in GB/s of weight rows, for rows resident in L2 (the kernel's
// own speed) and rows streamed from memory (256 MiB, 8x the L3).
//
//   build/bench/kernel_bench --benchmark_repetitions=5
//
// Paths the CPU lacks are skipped. docs/PERFORMANCE.md, "Inference (CPU)".

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "inference/cpu_gemm.h"
#include "inference/cpu_kernels.h"
#include "inference/tensor_type.h"

namespace stepproof::inference {
namespace {

enum Path { kPortable = 0, kAvx2 = 1, kVnni = 2 };

std::vector<uint8_t> RandomQ8_0Rows(int64_t rows, int64_t cols, uint32_t seed) {
  const int64_t row_bytes = cols / 32 * kQ8_0BlockBytes;
  std::vector<uint8_t> m(static_cast<size_t>(rows * row_bytes));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(0.001f, 0.01f);
  for (size_t b = 0; b + kQ8_0BlockBytes <= m.size(); b += kQ8_0BlockBytes) {
    const uint16_t d = FloatToFp16(scale(rng));
    std::memcpy(&m[b], &d, 2);
    for (int i = 0; i < 32; ++i) m[b + 2 + i] = static_cast<uint8_t>(rng());
  }
  return m;
}

void BM_QDotQ8_0(benchmark::State& state) {
  const Path path = static_cast<Path>(state.range(0));
  const int64_t cols = state.range(1);
  const int64_t bytes = state.range(2);
  if ((path == kAvx2 && !CpuSupportsAvx2Fma()) || (path == kVnni && !CpuSupportsAvx512Vnni())) {
    state.SkipWithError("not supported by this CPU");
    return;
  }
  const int64_t row_bytes = cols / 32 * kQ8_0BlockBytes;
  const int64_t rows = bytes / row_bytes;
  const std::vector<uint8_t> m = RandomQ8_0Rows(rows, cols, 1);
  std::vector<float> x(static_cast<size_t>(cols));
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : x) v = u(rng);
  std::vector<uint8_t> xq(static_cast<size_t>(cols / 32 * kActivationBlockBytes));
  QuantizeActivations(x.data(), cols, xq.data());
  // 64-byte aligned, as MatMul allocates it.
  std::vector<uint8_t> xv_buf(static_cast<size_t>(Q8_0VnniActivationBytes(cols) + 63));
  uint8_t* const xv = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(xv_buf.data()) + 63) & ~uintptr_t{63});
  PrepareQ8_0VnniActivations(xq.data(), cols, xv);
  const QuantDotFn dot = path == kVnni ? &QDotQ8_0Avx512Vnni : SelectQuantDot(TensorType::kQ8_0, path == kAvx2);
  const uint8_t* act = path == kVnni ? xv : xq.data();
  float sink = 0;
  for (auto _ : state) {
    for (int64_t r = 0; r < rows; ++r) sink += dot(m.data() + r * row_bytes, act, cols);
    benchmark::DoNotOptimize(sink);
  }
  state.SetBytesProcessed(state.iterations() * rows * row_bytes);
  state.SetLabel(path == kPortable ? "portable" : path == kAvx2 ? "avx2" : "avx512vnni");
}

// Args: path, cols (1536 = hidden size, 8960 = FFN), bytes of rows.
constexpr int64_t kL2 = 384 << 10;
constexpr int64_t kDram = int64_t{256} << 20;
BENCHMARK(BM_QDotQ8_0)
    ->ArgNames({"path", "cols", "bytes"})
    ->Args({kPortable, 1536, kL2})
    ->Args({kAvx2, 1536, kL2})
    ->Args({kVnni, 1536, kL2})
    ->Args({kAvx2, 8960, kL2})
    ->Args({kVnni, 8960, kL2})
    ->Args({kAvx2, 1536, kDram})
    ->Args({kVnni, 1536, kDram});

// MatMul (one token, the engine's row chunking) over a 256 MiB matrix with
// the VNNI path off (AVX2) or on. Args: avx512, cols, threads.
void BM_MatMulQ8_0(benchmark::State& state) {
  const bool avx512 = state.range(0) != 0;
  const int64_t cols = state.range(1);
  if (!CpuSupportsAvx2Fma() || (avx512 && !CpuSupportsAvx512Vnni())) {
    state.SkipWithError("not supported by this CPU");
    return;
  }
  const int64_t row_bytes = cols / 32 * kQ8_0BlockBytes;
  const int64_t rows = kDram / row_bytes;
  static const std::vector<uint8_t>* m = nullptr;
  static int64_t m_cols = 0;
  if (m == nullptr || m_cols != cols) {
    delete m;
    m = new std::vector<uint8_t>(RandomQ8_0Rows(rows, cols, 1));
    m_cols = cols;
  }
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  const WeightMatrix w{TensorType::kQ8_0, m->data(), rows, cols, row_bytes};
  ThreadPool pool(static_cast<int>(state.range(2)));
  SetAvx512KernelsAllowed(avx512);
  const MatMulTask task{&w, y.data()};
  for (auto _ : state) {
    MatMul(pool, true, absl::MakeConstSpan(&task, 1), x.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  SetAvx512KernelsAllowed(true);
  state.SetBytesProcessed(state.iterations() * rows * row_bytes);
  state.SetLabel(avx512 ? "avx512vnni" : "avx2");
}
BENCHMARK(BM_MatMulQ8_0)
    ->ArgNames({"avx512", "cols", "threads"})
    ->Args({0, 1536, 1})
    ->Args({1, 1536, 1})
    ->Args({0, 8960, 1})
    ->Args({1, 8960, 1})
    ->Args({0, 1536, 2})
    ->Args({1, 1536, 2})
    ->UseRealTime();

// The multi-token Q8_0 product of prefill and replay (GemmQ8_0, one thread):
// `rows` rows of `cols` (L2/L3-resident for 1536 x 1024) times `tokens`
// activations. Reported as multiply-accumulates per second (items).
void BM_GemmQ8_0(benchmark::State& state) {
  const GemmIsa isa = static_cast<GemmIsa>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2), tokens = state.range(3);
  if (SelectGemmIsa(true) < isa) {
    state.SkipWithError("not supported by this CPU");
    return;
  }
  const int64_t row_bytes = cols / 32 * kQ8_0BlockBytes;
  const std::vector<uint8_t> m = RandomQ8_0Rows(rows, cols, 1);
  std::vector<float> x(static_cast<size_t>(cols * tokens));
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : x) v = u(rng);
  const int64_t xq_stride = cols / 32 * kActivationBlockBytes;
  const int64_t xa_stride = GemmQ8_0ActivationBytes(isa, cols);
  std::vector<uint8_t> xq(static_cast<size_t>(xq_stride * tokens)), xa(static_cast<size_t>(xa_stride * tokens));
  for (int64_t t = 0; t < tokens; ++t) {
    QuantizeActivationsFast(isa, x.data() + t * cols, cols, xq.data() + t * xq_stride);
    PrepareGemmQ8_0Activations(isa, xq.data() + t * xq_stride, cols, xa.data() + t * xa_stride);
  }
  std::vector<float> y(static_cast<size_t>(rows * tokens));
  for (auto _ : state) {
    GemmQ8_0(isa, m.data(), row_bytes, rows, cols, xa.data(), xa_stride, tokens, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * rows * cols * tokens);
  state.SetLabel(isa == GemmIsa::kAvx512 ? "avx512vnni" : "avx2");
}
BENCHMARK(BM_GemmQ8_0)
    ->ArgNames({"isa", "rows", "cols", "tokens"})
    ->Args({static_cast<int>(GemmIsa::kAvx2), 1024, 1536, 64})
    ->Args({static_cast<int>(GemmIsa::kAvx512), 1024, 1536, 64})
    ->Args({static_cast<int>(GemmIsa::kAvx512), 1024, 8960, 64});

}  // namespace
}  // namespace stepproof::inference

BENCHMARK_MAIN();
