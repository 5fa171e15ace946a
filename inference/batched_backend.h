// A Backend over a BatchScheduler: concurrent Generate calls are batched
// (continuous batching, batch_scheduler.h) on one executor, CPU or CUDA.
//
// Each Generate call validates its request, submits it, then on its own
// thread takes the sampled tokens one by one and does what CpuBackend does
// with them: step segmentation, execution fingerprints, the sink, and the
// cancellation / deadline polls (once per token, and every poll_interval
// while waiting). Given an executor whose rows match the CPU engine's bit for
// bit (CpuBatchExecutor), it returns exactly CpuBackend's steps.
//
// Thread-safety: as Backend.

#ifndef STEPPROOF_INFERENCE_BATCHED_BACKEND_H_
#define STEPPROOF_INFERENCE_BATCHED_BACKEND_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "inference/backend.h"
#include "inference/batch_executor.h"
#include "inference/batch_scheduler.h"
#include "inference/bpe_tokenizer.h"

namespace stepproof::inference {

struct BatchedBackendOptions {
  SchedulerOptions scheduler;  // eos_id is taken from the tokenizer
  // How often a Generate call waiting for a token polls is_cancelled.
  absl::Duration poll_interval = absl::Milliseconds(5);
  // The clock for deadlines and step times; empty = absl::Now. Tests inject
  // one to place a deadline between two tokens.
  std::function<absl::Time()> clock;
};

// REQUIRES: executor != nullptr; n_vocab is the model's vocabulary (the
// logits' width); info.context_length is set to the executor's.
std::unique_ptr<Backend> NewBatchedBackend(ModelInfo info, DeviceInfo device, BpeTokenizer tokenizer,
                                           int32_t n_vocab, std::unique_ptr<BatchExecutor> executor,
                                           BatchedBackendOptions options);

// The scheduler's counters, for tests and benchmarks; null when `backend`
// was not made by NewBatchedBackend.
const BatchScheduler* BatchedBackendScheduler(const Backend& backend);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_BATCHED_BACKEND_H_
