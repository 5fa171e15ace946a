// InMemoryProvenanceStore: a ProvenanceStore held in process memory. Same
// contract as the SQLite store (the conformance suite runs on both), no
// durability. For tests, tools and benchmarks that do not measure storage.
//
// Thread-safety: thread-safe (one mutex).
#ifndef STEPPROOF_PROVENANCE_LOG_MEMORY_STORE_H_
#define STEPPROOF_PROVENANCE_LOG_MEMORY_STORE_H_

#include <memory>

#include "provenance/log/store.h"

namespace stepproof::provenance {

std::unique_ptr<ProvenanceStore> NewInMemoryProvenanceStore();

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_LOG_MEMORY_STORE_H_
