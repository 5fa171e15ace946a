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
// Durability: one writer connection; every commit is in the WAL file before
// the call returns, so it survives a crash (kill -9) of this process. What
// survives power loss (or an OS crash) depends on the call:
//   - SealTrace, AppendLogBatch, PutAnchor, InterruptOpenTraces commit with
//     synchronous=FULL: the WAL is fsynced before they return. A final trace
//     checkpoint, its promise and every log checkpoint are on stable storage
//     before anything hands them out (a client holding a signed checkpoint
//     the service later lost would look like equivocation).
//   - CreateTrace and AppendTraceLeaf (the per-step checkpoints of a trace
//     being generated) commit with synchronous=NORMAL: no fsync of their own.
//     They become durable with the next synced commit of any caller (at the
//     latest their own trace's seal), since fsyncing the WAL flushes every
//     frame written before. A power loss can therefore lose the tail of a
//     trace that was never sealed, never a sealed one. docs/FORMAT.md,
//     "Durability", states what a client holding such a checkpoint can rely
//     on.
// Concurrent writes share commits (group commit): one fsync serves every
// synced op queued while the previous transaction ran.
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
