// The inference backend interface: a loaded model that turns a prompt into a
// stream of reasoning / answer steps.
//
// A Backend owns one model (weights, tokenizer, caches). The CPU engine
// implements it here (OpenCpuBackend); a CUDA engine and an upstream
// (OpenAI-compatible server) backend implement the same interface later, so
// services/ codes against this header only.
//
// Thread-safety: every method of Backend may be called concurrently.
// Generate() calls are serialised (or batched) inside the implementation; the
// sink of one call is only ever invoked on the thread that called Generate.

#ifndef STEPPROOF_INFERENCE_BACKEND_H_
#define STEPPROOF_INFERENCE_BACKEND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "inference/bpe_tokenizer.h"
#include "inference/sampler.h"
#include "inference/step_segmenter.h"

namespace stepproof::inference {

// What was loaded. `weight_type` names the dominant tensor type ("F32",
// "F16", "BF16", "Q8_0", "Q4_K", or "mixed").
struct ModelInfo {
  std::string name;          // general.name, or the file name
  std::string architecture;  // general.architecture: "qwen2", "llama"
  std::string path;
  std::string weight_type;
  int64_t n_params = 0;
  int32_t context_length = 0;  // the context the backend was opened with
};

struct DeviceInfo {
  std::string backend;  // "cpu" or "cuda"
  std::string device;   // e.g. "x86-64 avx2, 2 threads"
};

struct GenerationRequest {
  // Token ids of the full prompt (chat template already applied).
  std::vector<int32_t> prompt_tokens;
  SamplingParams sampling;
  int32_t max_tokens = 1024;  // generated tokens, not counting the prompt
  absl::Time deadline = absl::InfiniteFuture();
  std::function<bool()> is_cancelled;  // may be empty; polled once per token
  // Attach execution fingerprints (inference/fingerprint.h) to the steps
  // (Step::fingerprint). Off only to measure their cost.
  bool fingerprint = true;
};

enum class FinishReason {
  kEndOfSequence,
  kMaxTokens,
  kDeadline,
  kCancelled,
  kContextFull,
};

// "end_of_sequence", "max_tokens", "deadline", "cancelled", "context_full".
std::string_view FinishReasonName(FinishReason reason);

// The checks every backend makes of a request before generating, with the
// same messages: a non-empty prompt that leaves room in the context of
// n_ctx for at least one generated token, prompt ids in [0, n_vocab),
// max_tokens >= 1, valid sampling settings. INVALID_ARGUMENT naming the
// problem.
absl::Status ValidateGenerationRequest(const GenerationRequest& request, int64_t n_ctx, int32_t n_vocab);

struct GenerationResult {
  FinishReason finish = FinishReason::kEndOfSequence;
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;  // sampled tokens, the end-of-sequence included
  absl::Duration prefill_time;
  absl::Duration decode_time;
};

// Called on the generating thread once per completed step, in order. A non-OK
// return stops generation and Generate returns that status.
using StepSink = std::function<absl::Status(const Step&)>;

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const ModelInfo& model() const = 0;
  virtual DeviceInfo device() const = 0;
  virtual const BpeTokenizer& tokenizer() const = 0;

  // Generates from request.prompt_tokens, delivering each completed step to
  // `sink` as soon as it is complete.
  //
  // Thread-safe: concurrent calls are allowed (serialised or batched inside).
  // Returns INVALID_ARGUMENT for bad requests (empty prompt, a token id out of
  // the vocabulary, a prompt that does not fit the context, max_tokens < 1,
  // invalid sampling settings). A deadline or a cancellation is not an error:
  // generation ends normally with FinishReason kDeadline / kCancelled after the
  // steps completed so far (the partial last step included) were delivered.
  // DEADLINE_EXCEEDED is never returned. Returns the sink's status if the sink
  // fails.
  virtual absl::StatusOr<GenerationResult> Generate(
      const GenerationRequest& request, const StepSink& sink) = 0;
};

struct CpuBackendOptions {
  int32_t threads = 0;         // 0 = all cores
  int32_t context_length = 0;  // 0 = the model's, capped at 4096
};

// Opens a GGUF model file (weights are memory-mapped, not copied) for the CPU
// engine. Returns NOT_FOUND if the file does not exist, INVALID_ARGUMENT /
// DATA_LOSS naming the problem when the file is not a usable GGUF model
// (unsupported architecture or tensor type, missing tensor, wrong shape,
// truncated file), INVALID_ARGUMENT for a context longer than the model's,
// RESOURCE_EXHAUSTED when the KV cache would not fit in 3/4 of the RAM.
absl::StatusOr<std::unique_ptr<Backend>> OpenCpuBackend(
    const std::string& gguf_path, const CpuBackendOptions& options);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_BACKEND_H_
