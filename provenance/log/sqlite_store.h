// SqliteProvenanceStore: the durable ProvenanceStore, one SQLite file in WAL
// mode. This class's .cc is the only file of the project that includes
// sqlite3.h.
//
// File identity and damage: a new file gets application_id 0x53545046
// ("STPF") and user_version = the number of schema migrations applied
// (migrations are numbered and run in order, each in its own transaction).
// Opening a file that is not a database, belongs to another application,
// has a newer schema than this build knows, or fails PRAGMA quick_check
// gives FAILED_PRECONDITION or DATA_LOSS with a message naming the file and
// the problem; the file is never modified in that case.
//
// Durability: one writer connection with synchronous=FULL. In WAL mode that
// fsyncs the WAL at every commit, so every signed checkpoint the ledger hands
// out (per step, the final one, and every log checkpoint) is on stable
// storage before the call that produced it returns: it survives kill -9 and
// power loss. NORMAL would only survive process crashes, and a client holding
// a signed checkpoint the service later lost would look like equivocation.
// The cost is one fsync per step commit; log integration amortises it over a
// batch.
//
// Concurrency: writes are serialised on the writer connection; reads use a
// small pool of separate read connections, so they run concurrently with the
// writer (WAL) and never see a half-written transaction.
//
// Thread-safety: thread-safe.
#ifndef STEPPROOF_PROVENANCE_LOG_SQLITE_STORE_H_
#define STEPPROOF_PROVENANCE_LOG_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "provenance/log/store.h"

namespace stepproof::provenance {

struct SqliteStoreOptions {
  // Run PRAGMA quick_check at open (reads the whole file: O(size)). Turn off
  // only for very large files whose integrity is checked otherwise.
  bool quick_check_on_open = true;
  // Read connections in the pool (>= 1).
  int read_connections = 4;
  // How long a connection waits on a lock held by another process.
  int busy_timeout_ms = 5000;
  // Create the file (and its schema) if it does not exist.
  bool create_if_missing = true;
};

// The application_id written into every StepProof database.
inline constexpr int32_t kSqliteApplicationId = 0x53545046;  // "STPF"
// The schema version this build writes (PRAGMA user_version).
int SqliteSchemaVersion();

// Opens (creating and migrating as needed) the store at `path`.
// FAILED_PRECONDITION: not a database, foreign application_id or schema,
// newer schema, or missing file with create_if_missing false.
// DATA_LOSS: quick_check found damage. INTERNAL/UNAVAILABLE: I/O errors.
absl::StatusOr<std::unique_ptr<ProvenanceStore>> OpenSqliteProvenanceStore(
    const std::string& path, const SqliteStoreOptions& options = {});

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_LOG_SQLITE_STORE_H_
