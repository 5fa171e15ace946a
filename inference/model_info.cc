#include "inference/model_info.h"

#include "absl/container/flat_hash_map.h"
#include "inference/tensor_type.h"

namespace stepproof::inference {

ModelInfo DescribeModel(const GgufFile& file, const std::string& path) {
  ModelInfo info;
  info.path = path;
  if (absl::StatusOr<std::string> name = file.GetString("general.name"); name.ok()) {
    info.name = *name;
  } else {
    info.name = path.substr(path.find_last_of('/') + 1);
  }
  if (absl::StatusOr<std::string> arch = file.GetString("general.architecture"); arch.ok()) {
    info.architecture = *arch;
  }
  absl::flat_hash_map<int, uint64_t> bytes;
  for (const GgufTensor& t : file.tensors()) {
    info.n_params += t.n_elements;
    if (t.ne.size() >= 2) bytes[static_cast<int>(t.type)] += t.n_bytes;
  }
  int best = -1;
  uint64_t best_bytes = 0;
  for (const auto& [type, b] : bytes) {
    if (b > best_bytes || (b == best_bytes && type < best)) {
      best = type;
      best_bytes = b;
    }
  }
  info.weight_type = best < 0 ? "none" : std::string(TensorTypeName(static_cast<TensorType>(best)));
  return info;
}

}  // namespace stepproof::inference
