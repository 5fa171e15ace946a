#include "inference/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STEPPROOF_PAUSE() _mm_pause()
#else
#define STEPPROOF_PAUSE() ((void)0)
#endif

namespace stepproof::inference {
namespace {
constexpr int kSpinIterations = 500;  // a few microseconds of pause instructions
}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads > 0 ? n_threads
                                           : static_cast<int>(std::thread::hardware_concurrency()))) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    stopping_.store(true);
    generation_.fetch_add(1);
    wake_.SignalAll();
  }
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunChunks() {
  const int64_t chunks = (job_n_ + job_grain_ - 1) / job_grain_;
  for (;;) {
    const int64_t k = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (k >= chunks) return;
    (*job_)(k * job_grain_, std::min(job_n_, (k + 1) * job_grain_));
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      STEPPROOF_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      absl::MutexLock lock(&mu_);
      while (!stop_ && generation_.load(std::memory_order_acquire) == seen) wake_.Wait(&mu_);
      g = generation_.load(std::memory_order_acquire);
    }
    if (stopping_.load()) return;
    seen = g;
    // Join the current job if it is still open.
    int64_t st = state_.load(std::memory_order_acquire);
    bool joined = false;
    while ((st & kClosed) == 0) {
      if (state_.compare_exchange_weak(st, st + 1, std::memory_order_acq_rel)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    RunChunks();
    state_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t grains = (n + grain - 1) / grain;
  if (n_threads_ == 1 || grains <= 1) {
    fn(0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_grain_ = grain;
  next_chunk_.store(0, std::memory_order_relaxed);
  state_.store(0, std::memory_order_release);  // open
  {
    absl::MutexLock lock(&mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    wake_.SignalAll();
  }
  RunChunks();
  // All chunks are taken; close the job and wait for the workers inside it.
  state_.fetch_or(kClosed, std::memory_order_acq_rel);
  for (int spin = 0; (state_.load(std::memory_order_acquire) & (kClosed - 1)) != 0; ++spin) {
    if (spin < kSpinIterations) {
      STEPPROOF_PAUSE();
    } else {
      std::this_thread::yield();  // a worker was descheduled (shared machine)
    }
  }
  job_ = nullptr;
}

}  // namespace stepproof::inference
