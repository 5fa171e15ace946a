// A fixed pool of worker threads for data-parallel loops over rows.
//
// ParallelFor splits [0, n) into chunks of `grain` that the threads (the
// caller included) take from a shared counter, so a row is always computed
// whole by one thread and results do not depend on the thread count as long as
// each row's computation is itself deterministic. Dynamic chunks keep all
// cores busy when one thread is descheduled (the machine is shared). Workers
// spin briefly between jobs (a decode step issues hundreds of small jobs) and
// then sleep.
//
// Thread-safety: ParallelFor must not be called concurrently on one pool (the
// engine serialises generation); the pool itself is safe to destroy after the
// last ParallelFor returned.

#ifndef STEPPROOF_INFERENCE_THREAD_POOL_H_
#define STEPPROOF_INFERENCE_THREAD_POOL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace stepproof::inference {

class ThreadPool {
 public:
  // A pool of `n_threads` (>= 1, the caller counts as one; 0 means
  // std::thread::hardware_concurrency()).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) on disjoint ranges [k * grain, min(n, (k + 1) *
  // grain)) covering [0, n), on any of the threads, and returns when all have
  // returned. Runs inline when n <= grain or the pool has one thread.
  void ParallelFor(int64_t n, int64_t grain,
                   const std::function<void(int64_t, int64_t)>& fn);

 private:
  void WorkerLoop();
  void RunChunks();

  const int n_threads_;
  std::vector<std::thread> workers_;

  // The current job (written by the caller before bumping generation_).
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_grain_ = 1;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<uint64_t> generation_{0};
  // kClosed | number of workers inside the current job. A worker joins only
  // while the job is open, so the caller never waits for a worker that was
  // descheduled before it could start (it just does that worker's chunks).
  static constexpr int64_t kClosed = int64_t{1} << 40;
  std::atomic<int64_t> state_{kClosed};

  absl::Mutex mu_;
  absl::CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stopping_{false};
};

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_THREAD_POOL_H_
