#include "inference/cuda/cuda_backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "inference/cuda/device.h"
#include "inference/gguf.h"
#include "inference/gguf_tokenizer.h"
#include "inference/model.h"
#include "inference/model_info.h"

#ifdef STEPPROOF_HAVE_CUDA
#include "inference/cuda/cuda_executor.h"
#endif

namespace stepproof::inference::cuda {

absl::StatusOr<std::unique_ptr<Backend>> OpenCudaBackend(const std::string& gguf_path,
                                                         const CudaBackendOptions& options) {
  absl::StatusOr<CudaDeviceInfo> device = ProbeCudaDevice();
  if (!device.ok()) return device.status();
  if (options.slots < 1) return absl::InvalidArgumentError("slots must be >= 1");
  if (options.context_length < 0) return absl::InvalidArgumentError("context_length must be >= 0");
#ifndef STEPPROOF_HAVE_CUDA
  (void)gguf_path;
  return absl::UnavailableError("this build has no CUDA support");
#else
  absl::StatusOr<GgufFile> file = GgufFile::Open(gguf_path);
  if (!file.ok()) return file.status();
  absl::StatusOr<BpeTokenizer> tokenizer = LoadTokenizer(*file);
  if (!tokenizer.ok()) return tokenizer.status();
  ModelInfo info = DescribeModel(*file, gguf_path);
  // The CPU Model validates every tensor; its mapping is dropped once the
  // weights are on the device.
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), ModelOptions{1, true});
  if (!model.ok()) return model.status();
  const ModelConfig& c = (*model)->config();
  absl::StatusOr<int32_t> resolved = ResolveContextLength(c, options.context_length);
  if (!resolved.ok()) return resolved.status();
  const int32_t n_ctx = *resolved;
  CudaExecutorOptions eo;
  eo.slots = options.slots;
  eo.context_length = n_ctx;
  eo.sampleable_vocab = std::min(c.n_vocab, tokenizer->vocab_size());
  absl::StatusOr<std::unique_ptr<CudaExecutor>> executor = CudaExecutor::Create(**model, eo);
  if (!executor.ok()) return executor.status();
  const int32_t n_vocab = c.n_vocab;
  model->reset();
  DeviceInfo dev{"cuda", absl::StrCat(device->name, " (sm_", device->compute_capability, ", ",
                                      device->total_memory_bytes >> 30, " GiB), ", options.slots, " slots")};
  return NewBatchedBackend(std::move(info), std::move(dev), *std::move(tokenizer), n_vocab, *std::move(executor),
                           options.batching);
#endif
}

}  // namespace stepproof::inference::cuda
