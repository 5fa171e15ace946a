// ModelInfo (backend.h) read from a GGUF file, for backends other than
// CpuBackend (which has its own copy of the same rules).
//
// Thread-safety: a pure function.

#ifndef STEPPROOF_INFERENCE_MODEL_INFO_H_
#define STEPPROOF_INFERENCE_MODEL_INFO_H_

#include <string>

#include "inference/backend.h"
#include "inference/gguf.h"

namespace stepproof::inference {

// name (general.name, else the file name), architecture, path, weight_type
// (the type holding most bytes among matrices), n_params. context_length is
// left 0 for the backend to set.
ModelInfo DescribeModel(const GgufFile& file, const std::string& path);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_MODEL_INFO_H_
