// The device side of continuous batching: a model with a fixed number of
// KV-cache slots that prefills one sequence into a slot and runs one decode
// step for a batch of sequences, each in its own slot at its own position.
//
// BatchScheduler (batch_scheduler.h) drives one executor from one engine
// thread; the CPU engine (cpu_batch_executor.h) and the CUDA engine
// (cuda/cuda_executor.h) implement it. Sampling happens inside the executor
// (a GPU keeps the logits on the device) with the CPU Sampler's semantics:
// the token at absolute position p is drawn with Philox counter p, and ids at
// or past sampleable_vocab (padding rows of the embedding) are never chosen.
//
// Thread-safety: none. One thread (the scheduler's engine thread) calls every
// method.

#ifndef STEPPROOF_INFERENCE_BATCH_EXECUTOR_H_
#define STEPPROOF_INFERENCE_BATCH_EXECUTOR_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "inference/sampler.h"

namespace stepproof::inference {

// One sequence of a decode step: feed `token` at `position` into `slot`'s KV
// cache and sample the token at position + 1 with `sampling`.
struct DecodeItem {
  int32_t slot = 0;
  int32_t token = 0;
  int32_t position = 0;
  SamplingParams sampling;
};

class BatchExecutor {
 public:
  virtual ~BatchExecutor() = default;

  // Number of KV-cache slots (sequences that can be in flight at once).
  virtual int32_t slots() const = 0;
  // Positions each slot holds.
  virtual int32_t context_length() const = 0;
  // Width of a hidden row (the final hidden state, after the last RMSNorm).
  virtual int32_t n_embd() const = 0;
  // Largest batch Decode accepts (>= 1).
  virtual int32_t max_batch() const = 0;

  // Runs prompt tokens at positions start .. start + T - 1 in `slot`, writing
  // their K/V (positions before `start` must have been written by earlier
  // calls for the same sequence). Writes the hidden rows of all T tokens
  // (T, n_embd) to *hidden when all_hidden, else the last token's row only.
  // When `sample` is non-null, also samples the token at position start + T
  // from the last token's logits into *sampled.
  // Returns INVALID_ARGUMENT for a bad slot, position or token id.
  virtual absl::Status Prefill(int32_t slot, absl::Span<const int32_t> tokens, int32_t start,
                               bool all_hidden, const SamplingParams* sample, std::vector<float>* hidden,
                               SampledToken* sampled) = 0;

  // One decode step over `batch` (distinct slots, 1 <= size <= max_batch()).
  // Writes the hidden row that produced each sampled token's logits to
  // *hidden (B, n_embd) and the sampled tokens to *sampled (B).
  // Returns INVALID_ARGUMENT for a bad batch.
  virtual absl::Status Decode(absl::Span<const DecodeItem> batch, std::vector<float>* hidden,
                              std::vector<SampledToken>* sampled) = 0;
};

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_BATCH_EXECUTOR_H_
