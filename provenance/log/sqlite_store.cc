// The SQLite ProvenanceStore. The only file in the project that includes
// sqlite3.h. Layout of the file: a thin connection/statement wrapper, the
// schema migrations, open-time checks, then the store methods (one prepared
// statement per query, cached per connection).
#include "provenance/log/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace stepproof::provenance {
namespace {

// ---- Schema ----------------------------------------------------------------
//
// Migrations are numbered from 1; migration i moves user_version from i-1 to
// i. Never edit a released migration: append a new one.
//
// Node keys (NodeKey below): a node (level, index) completes when leaf
// (index+1)<<level - 1 is appended, so keying it by (that leaf) * 64 + level
// makes every log append write at the right edge of the B-tree.
const char* const kMigrations[] = {
    // 1: initial schema.
    R"sql(
-- Small rows, updated in place at every step and at integration: the
-- header is steps row 0, the latest checkpoint is trace_checkpoints at
-- `size`, the seal lives in trace_seals.
CREATE TABLE traces (
  seq INTEGER PRIMARY KEY,              -- creation order (ListTraces)
  trace_id TEXT NOT NULL UNIQUE,
  state INTEGER NOT NULL,               -- TraceState
  created_ns INTEGER NOT NULL,          -- Unix nanoseconds
  size INTEGER NOT NULL,                -- leaves committed
  log_index INTEGER                     -- global log leaf, once integrated
);
CREATE TABLE trace_seals (
  trace_id TEXT PRIMARY KEY,
  final_checkpoint BLOB NOT NULL,       -- signed note (the log leaf)
  promise BLOB NOT NULL,                -- signed inclusion promise
  sealed_ns INTEGER NOT NULL
);
CREATE INDEX traces_by_state ON traces(state) WHERE state = 0;
CREATE TABLE steps (
  trace_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  record BLOB NOT NULL,
  leaf_hash BLOB NOT NULL,
  PRIMARY KEY (trace_id, idx)
) WITHOUT ROWID;
CREATE TABLE trace_nodes (
  trace_id TEXT NOT NULL,
  node_key INTEGER NOT NULL,
  hash BLOB NOT NULL,
  PRIMARY KEY (trace_id, node_key)
) WITHOUT ROWID;
CREATE TABLE trace_checkpoints (
  trace_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  note BLOB NOT NULL,
  PRIMARY KEY (trace_id, size)
) WITHOUT ROWID;
CREATE TABLE log_pending (
  seq INTEGER PRIMARY KEY,              -- seal order
  trace_id TEXT NOT NULL UNIQUE,
  sealed_ns INTEGER NOT NULL
);
CREATE TABLE log_leaves (
  idx INTEGER PRIMARY KEY,
  trace_id TEXT NOT NULL,
  leaf BLOB NOT NULL,                   -- final signed trace checkpoint
  leaf_hash BLOB NOT NULL
);
CREATE TABLE log_nodes (
  node_key INTEGER PRIMARY KEY,
  hash BLOB NOT NULL
);
CREATE TABLE log_checkpoints (
  size INTEGER PRIMARY KEY,
  note BLOB NOT NULL,
  integrated_ns INTEGER NOT NULL
);
CREATE TABLE anchors (
  id INTEGER PRIMARY KEY,
  log_size INTEGER NOT NULL,
  chain_id INTEGER NOT NULL,
  contract TEXT NOT NULL,
  tx_hash TEXT NOT NULL,
  block_number INTEGER NOT NULL,
  time_ns INTEGER NOT NULL,
  UNIQUE (chain_id, tx_hash)
);
CREATE INDEX anchors_by_size ON anchors(log_size);
PRAGMA application_id = 1398034502;
)sql",
};
constexpr int kNumMigrations = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kSqliteApplicationId == 1398034502);

// See the comment above kMigrations. REQUIRES: the node's last leaf < 2^57.
uint64_t NodeKey(const merkle::NodeId& id) {
  uint64_t last_leaf = ((id.index + 1) << id.level) - 1;
  return (last_leaf << 6) | id.level;
}

// A trace row as TraceRecord wants it (ReadTrace's column order).
#define kSelectTrace                                                        \
  "SELECT t.seq, t.trace_id, s.record, t.state, t.created_ns, t.size, "    \
  "c.note, z.final_checkpoint, t.log_index, z.promise FROM traces t "      \
  "JOIN steps s ON s.trace_id = t.trace_id AND s.idx = 0 "                 \
  "JOIN trace_checkpoints c ON c.trace_id = t.trace_id AND c.size = t.size " \
  "LEFT JOIN trace_seals z ON z.trace_id = t.trace_id "

int64_t ToNs(absl::Time t) { return absl::ToUnixNanos(t); }
absl::Time FromNs(int64_t ns) { return absl::FromUnixNanos(ns); }

// ---- Connection and statements ---------------------------------------------

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  std::string msg = absl::StrCat("sqlite: ", what, ": ", sqlite3_errstr(rc));
  if (db != nullptr && sqlite3_errmsg(db) != nullptr &&
      std::strcmp(sqlite3_errmsg(db), sqlite3_errstr(rc)) != 0) {
    absl::StrAppend(&msg, " (", sqlite3_errmsg(db), ")");
  }
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
      return absl::DataLossError(msg);
    case SQLITE_NOTADB:
      return absl::FailedPreconditionError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(msg);
    default:
      return absl::InternalError(msg);
  }
}

class Connection;

// A prepared statement in use: bind, step, read; reset when it goes out of
// scope so the cached statement is ready for the next user.
class Query {
 public:
  Query(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& Bind(int i, int64_t v) {
    Check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Query& BindU(int i, uint64_t v) { return Bind(i, static_cast<int64_t>(v)); }
  Query& Bind(int i, const std::string& s) {
    Check(sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()),
                            SQLITE_STATIC));
    return *this;
  }
  Query& BindBlob(int i, const void* data, size_t n) {
    // A zero-length blob must not bind as NULL (NOT NULL columns).
    static const char kEmpty = 0;
    Check(sqlite3_bind_blob(stmt_, i, n == 0 ? &kEmpty : data,
                            static_cast<int>(n), SQLITE_STATIC));
    return *this;
  }
  Query& BindBlob(int i, const std::string& s) {
    return BindBlob(i, s.data(), s.size());
  }
  Query& BindBlob(int i, const merkle::Hash& h) {
    return BindBlob(i, h.data(), h.size());
  }

  // True when a row is available; false when done.
  absl::StatusOr<bool> Step() {
    if (!bind_status_.ok()) return bind_status_;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, sqlite3_sql(stmt_));
  }
  absl::Status Exec() {
    absl::StatusOr<bool> r = Step();
    return r.ok() ? absl::OkStatus() : r.status();
  }
  // Ready to step again with new bindings (a loop over rows to write).
  void Reset() { sqlite3_reset(stmt_); }

  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  uint64_t UInt(int col) { return static_cast<uint64_t>(Int(col)); }
  bool IsNull(int col) {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }
  std::string Blob(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string()
                        : std::string(static_cast<const char*>(p), n);
  }
  std::string Text(int col) {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p), n);
  }
  absl::StatusOr<merkle::Hash> HashAt(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    if (p == nullptr || n != static_cast<int>(merkle::kHashSize)) {
      return absl::DataLossError(
          absl::StrCat("stored hash has ", n, " bytes, want 32"));
    }
    merkle::Hash h;
    std::memcpy(h.data(), p, h.size());
    return h;
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_status_.ok()) {
      bind_status_ = SqliteError(db_, rc, "bind");
    }
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  absl::Status bind_status_;
};

class Connection {
 public:
  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    if (db_ != nullptr) sqlite3_close(db_);
  }

  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& path, int flags, int busy_timeout_ms) {
    auto c = std::unique_ptr<Connection>(new Connection());
    int rc = sqlite3_open_v2(path.c_str(), &c->db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      return SqliteError(c->db_, rc, absl::StrCat("open ", path));
    }
    sqlite3_extended_result_codes(c->db_, 1);
    sqlite3_busy_timeout(c->db_, busy_timeout_ms);
    return c;
  }

  sqlite3* db() { return db_; }

  absl::Status Exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      absl::Status s = SqliteError(nullptr, rc, msg);
      return s;
    }
    return absl::OkStatus();
  }

  // A cached prepared statement for `sql` (a string literal: cached by
  // address).
  absl::StatusOr<std::unique_ptr<Query>> Prepare(const char* sql) {
    auto it = cache_.find(sql);
    sqlite3_stmt* stmt = nullptr;
    if (it != cache_.end()) {
      stmt = it->second;
    } else {
      int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                  &stmt, nullptr);
      if (rc != SQLITE_OK) return SqliteError(db_, rc, sql);
      cache_.emplace(sql, stmt);
    }
    return std::make_unique<Query>(db_, stmt);
  }

  // Runs one statement that returns no rows through the statement cache
  // (transaction control on the hot write path: parsed once, not per call).
  absl::Status Run(const char* sql) {
    absl::StatusOr<std::unique_ptr<Query>> q = Prepare(sql);
    if (!q.ok()) return q.status();
    return (*q)->Exec();
  }

  // Single integer result of a pragma or query.
  absl::StatusOr<int64_t> QueryInt(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, sql);
    rc = sqlite3_step(stmt);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqliteError(db_, rc, sql);
    return v;
  }

 private:
  Connection() = default;
  sqlite3* db_ = nullptr;
  absl::flat_hash_map<const char*, sqlite3_stmt*> cache_;
};

#define SP_RETURN_IF_ERROR(expr) \
  do {                           \
    absl::Status _st = (expr);   \
    if (!_st.ok()) return _st;   \
  } while (0)

#define SP_CONCAT_INNER(a, b) a##b
#define SP_CONCAT(a, b) SP_CONCAT_INNER(a, b)
#define SP_ASSIGN_OR_RETURN(lhs, expr) \
  SP_ASSIGN_OR_RETURN_IMPL(SP_CONCAT(_sor_, __LINE__), lhs, expr)
#define SP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(*tmp)

// ---- Open-time checks -------------------------------------------------------

// Refuses files that are not StepProof databases or are newer than this
// build. Reads only.
absl::Status CheckIdentity(Connection& c, const std::string& path) {
  // The first read of the header: SQLITE_NOTADB surfaces here.
  absl::StatusOr<int64_t> app = c.QueryInt("PRAGMA application_id");
  if (!app.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is not a StepProof database: ", app.status().message()));
  }
  SP_ASSIGN_OR_RETURN(int64_t version, c.QueryInt("PRAGMA user_version"));
  SP_ASSIGN_OR_RETURN(
      int64_t tables,
      c.QueryInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"));
  if (*app != kSqliteApplicationId) {
    if (*app != 0 || version != 0 || tables != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " is not a StepProof database (application_id ", *app,
          ", user_version ", version, ", ", tables, " tables)"));
    }
  }
  if (version > kNumMigrations) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " has schema version ", version,
                     "; this build knows up to ", kNumMigrations));
  }
  return absl::OkStatus();
}

// Applies the migrations the file lacks, each in its own transaction.
absl::Status Migrate(Connection& c, const std::string& path) {
  SP_ASSIGN_OR_RETURN(int64_t version, c.QueryInt("PRAGMA user_version"));
  for (int v = static_cast<int>(version); v < kNumMigrations; ++v) {
    SP_RETURN_IF_ERROR(c.Exec("BEGIN IMMEDIATE"));
    absl::Status s = c.Exec(kMigrations[v]);
    if (s.ok()) {
      s = c.Exec(absl::StrCat("PRAGMA user_version = ", v + 1).c_str());
    }
    if (s.ok()) s = c.Exec("COMMIT");
    if (!s.ok()) {
      c.Exec("ROLLBACK").IgnoreError();
      return absl::InternalError(absl::StrCat(path, ": schema migration ",
                                              v + 1, " failed: ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status QuickCheck(Connection& c, const std::string& path) {
  sqlite3_stmt* stmt = nullptr;
  int rc =
      sqlite3_prepare_v2(c.db(), "PRAGMA quick_check(5)", -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(c.db(), rc, "quick_check");
  std::string problems;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(stmt, 0);
    std::string line = t == nullptr ? "" : reinterpret_cast<const char*>(t);
    if (line != "ok")
      absl::StrAppend(&problems, problems.empty() ? "" : "; ", line);
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) {
    return absl::DataLossError(
        absl::StrCat(path, " is damaged: quick_check: ", sqlite3_errstr(rc)));
  }
  if (!problems.empty()) {
    return absl::DataLossError(
        absl::StrCat(path, " is damaged: quick_check: ", problems));
  }
  return absl::OkStatus();
}

// ---- The store
// ---------------------------------------------------------------

class SqliteProvenanceStore : public ProvenanceStore {
 public:
  SqliteProvenanceStore(std::unique_ptr<Connection> writer,
                        std::vector<std::unique_ptr<Connection>> readers)
      : writer_(std::move(writer)) {
    for (auto& r : readers) free_readers_.push_back(r.get());
    readers_ = std::move(readers);
  }

  absl::Status CreateTrace(const TraceRecord& trace,
                           const TraceLeafWrite& header_leaf) override {
    if (header_leaf.index != 0 || header_leaf.trace_id != trace.trace_id) {
      return absl::InvalidArgumentError(
          "CreateTrace: header_leaf must be leaf 0 of the new trace");
    }
    return RunWrite([&](Connection& w) -> absl::Status {
      {
        SP_ASSIGN_OR_RETURN(
            auto q, w.Prepare("SELECT 1 FROM traces WHERE trace_id = ?"));
        q->Bind(1, trace.trace_id);
        SP_ASSIGN_OR_RETURN(bool exists, q->Step());
        if (exists) {
          return absl::AlreadyExistsError(
              absl::StrCat("trace ", trace.trace_id, " already exists"));
        }
      }
      {
        SP_ASSIGN_OR_RETURN(
            auto q, w.Prepare("INSERT INTO traces (trace_id, state, "
                              "created_ns, size) VALUES (?, 0, ?, 0)"));
        q->Bind(1, trace.trace_id).Bind(2, ToNs(trace.created));
        SP_RETURN_IF_ERROR(q->Exec());
      }
      SP_RETURN_IF_ERROR(WriteLeafOn(w, header_leaf));
      return absl::OkStatus();
    }, Sync::kDeferred);
  }

  absl::Status AppendTraceLeaf(const TraceLeafWrite& leaf) override {
    return RunWrite([&](Connection& w) -> absl::Status {
      SP_RETURN_IF_ERROR(WriteLeafOn(w, leaf));
      return absl::OkStatus();
    }, Sync::kDeferred);
  }

  absl::Status SealTrace(const std::string& trace_id,
                         const std::string& final_checkpoint,
                         const std::string& promise,
                         absl::Time sealed) override {
    return RunWrite([&](Connection& w) -> absl::Status {
      SP_ASSIGN_OR_RETURN(auto state, StateOn(w, trace_id));
      if (state.first != TraceState::kOpen) {
        return absl::FailedPreconditionError(
            absl::StrCat("trace ", trace_id, " is not open"));
      }
      {
        SP_ASSIGN_OR_RETURN(
            auto q, w.Prepare("UPDATE traces SET state = 1 WHERE trace_id = ?"));
        q->Bind(1, trace_id);
        SP_RETURN_IF_ERROR(q->Exec());
      }
      {
        SP_ASSIGN_OR_RETURN(
            auto q, w.Prepare("INSERT INTO trace_seals (trace_id, "
                              "final_checkpoint, promise, sealed_ns) "
                              "VALUES (?, ?, ?, ?)"));
        q->Bind(1, trace_id)
            .BindBlob(2, final_checkpoint)
            .BindBlob(3, promise)
            .Bind(4, ToNs(sealed));
        SP_RETURN_IF_ERROR(q->Exec());
      }
      {
        SP_ASSIGN_OR_RETURN(
            auto q,
            w.Prepare(
                "INSERT INTO log_pending (trace_id, sealed_ns) VALUES (?, ?)"));
        q->Bind(1, trace_id).Bind(2, ToNs(sealed));
        SP_RETURN_IF_ERROR(q->Exec());
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<uint64_t> InterruptOpenTraces() override {
    uint64_t changed = 0;
    SP_RETURN_IF_ERROR(RunWrite([&](Connection& w) -> absl::Status {
      SP_ASSIGN_OR_RETURN(
          auto q, w.Prepare("UPDATE traces SET state = 2 WHERE state = 0"));
      SP_RETURN_IF_ERROR(q->Exec());
      changed = static_cast<uint64_t>(sqlite3_changes(w.db()));
      return absl::OkStatus();
    }));
    return changed;
  }

  absl::StatusOr<TraceRecord> GetTrace(const std::string& trace_id) override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(
        auto q,
        c->Prepare(kSelectTrace "WHERE t.trace_id = ?"));
    q->Bind(1, trace_id);
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) {
      return absl::NotFoundError(absl::StrCat("unknown trace ", trace_id));
    }
    return ReadTrace(*q);
  }

  absl::StatusOr<std::vector<TraceRecord>> ListTraces(uint64_t before_seq,
                                                      size_t limit) override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(
        auto q,
        c->Prepare(kSelectTrace "WHERE t.seq < ? ORDER BY t.seq DESC LIMIT ?"));
    q->Bind(1, before_seq == 0 ? INT64_MAX : static_cast<int64_t>(before_seq))
        .Bind(2, static_cast<int64_t>(limit));
    std::vector<TraceRecord> out;
    while (true) {
      SP_ASSIGN_OR_RETURN(bool row, q->Step());
      if (!row) break;
      SP_ASSIGN_OR_RETURN(TraceRecord t, ReadTrace(*q));
      out.push_back(std::move(t));
    }
    return out;
  }

  absl::StatusOr<StepRow> GetStep(const std::string& trace_id,
                                  uint64_t index) override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(auto q,
                        c->Prepare("SELECT record, leaf_hash FROM steps WHERE "
                                   "trace_id = ? AND idx = ?"));
    q->Bind(1, trace_id).BindU(2, index);
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) {
      return absl::NotFoundError(
          absl::StrCat("trace ", trace_id, " has no step ", index));
    }
    StepRow s;
    s.trace_id = trace_id;
    s.index = index;
    s.encoded_record = q->Blob(0);
    SP_ASSIGN_OR_RETURN(s.leaf_hash, q->HashAt(1));
    return s;
  }

  absl::StatusOr<std::vector<merkle::Hash>> GetTraceNodes(
      const std::string& trace_id,
      absl::Span<const merkle::NodeId> ids) override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(auto q, c->Prepare("SELECT hash FROM trace_nodes WHERE "
                                           "trace_id = ? AND node_key = ?"));
    std::vector<merkle::Hash> out;
    out.reserve(ids.size());
    for (const merkle::NodeId& id : ids) {
      q->Bind(1, trace_id).BindU(2, NodeKey(id));
      SP_ASSIGN_OR_RETURN(bool row, q->Step());
      if (!row) {
        return absl::NotFoundError(absl::StrCat("trace ", trace_id,
                                                " has no node (", id.level,
                                                ", ", id.index, ")"));
      }
      SP_ASSIGN_OR_RETURN(merkle::Hash h, q->HashAt(0));
      out.push_back(h);
      q->Reset();
    }
    return out;
  }

  absl::StatusOr<std::string> GetTraceCheckpoint(const std::string& trace_id,
                                                 uint64_t size) override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(auto q, c->Prepare("SELECT note FROM trace_checkpoints "
                                           "WHERE trace_id = ? AND size = ?"));
    q->Bind(1, trace_id).BindU(2, size);
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) {
      return absl::NotFoundError(absl::StrCat(
          "trace ", trace_id, " has no checkpoint of size ", size));
    }
    return q->Blob(0);
  }

  absl::StatusOr<std::vector<PendingLogEntry>> ListPendingLogEntries(
      size_t limit) override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(
        auto q,
        c->Prepare(
            "SELECT p.seq, p.trace_id, z.final_checkpoint, p.sealed_ns "
            "FROM log_pending p JOIN trace_seals z ON z.trace_id = p.trace_id "
            "ORDER BY p.seq LIMIT ?"));
    q->Bind(1, static_cast<int64_t>(limit));
    std::vector<PendingLogEntry> out;
    while (true) {
      SP_ASSIGN_OR_RETURN(bool row, q->Step());
      if (!row) break;
      PendingLogEntry e;
      e.seq = q->UInt(0);
      e.trace_id = q->Text(1);
      e.leaf = q->Blob(2);
      e.sealed = FromNs(q->Int(3));
      out.push_back(std::move(e));
    }
    return out;
  }

  absl::StatusOr<uint64_t> CountPendingLogEntries() override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(auto q, c->Prepare("SELECT count(*) FROM log_pending"));
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    return row ? q->UInt(0) : 0;
  }

  absl::Status AppendLogBatch(const LogBatch& batch) override {
    for (size_t i = 0; i < batch.leaves.size(); ++i) {
      if (batch.leaves[i].index != batch.first_index + i) {
        return absl::InvalidArgumentError(absl::StrCat(
            "log batch leaf ", i, " has index ", batch.leaves[i].index,
            ", want ", batch.first_index + i));
      }
    }
    return RunWrite([&](Connection& w) -> absl::Status {
      SP_ASSIGN_OR_RETURN(uint64_t size, LogSizeOn(w));
      if (batch.first_index != size) {
        return absl::FailedPreconditionError(
            absl::StrCat("log batch starts at ", batch.first_index,
                         " but the log has ", size, " leaves"));
      }
      SP_ASSIGN_OR_RETURN(
          auto leaf_q,
          w.Prepare("INSERT INTO log_leaves (idx, trace_id, leaf, leaf_hash) "
                    "VALUES (?, ?, ?, ?)"));
      SP_ASSIGN_OR_RETURN(
          auto pending_q,
          w.Prepare("DELETE FROM log_pending WHERE trace_id = ?"));
      SP_ASSIGN_OR_RETURN(
          auto trace_q,
          w.Prepare("UPDATE traces SET log_index = ? WHERE trace_id = ?"));
      for (const LogLeaf& leaf : batch.leaves) {
        leaf_q->BindU(1, leaf.index)
            .Bind(2, leaf.trace_id)
            .BindBlob(3, leaf.leaf)
            .BindBlob(4, leaf.leaf_hash);
        SP_RETURN_IF_ERROR(leaf_q->Exec());
        leaf_q->Reset();
        pending_q->Bind(1, leaf.trace_id);
        SP_RETURN_IF_ERROR(pending_q->Exec());
        pending_q->Reset();
        trace_q->BindU(1, leaf.index).Bind(2, leaf.trace_id);
        SP_RETURN_IF_ERROR(trace_q->Exec());
        trace_q->Reset();
      }
      SP_ASSIGN_OR_RETURN(auto node_q,
                          w.Prepare("INSERT OR REPLACE INTO log_nodes "
                                    "(node_key, hash) VALUES (?, ?)"));
      for (const StoredNode& n : batch.nodes) {
        node_q->BindU(1, NodeKey(n.id)).BindBlob(2, n.hash);
        SP_RETURN_IF_ERROR(node_q->Exec());
        node_q->Reset();
      }
      SP_ASSIGN_OR_RETURN(
          auto cp_q,
          w.Prepare("INSERT INTO log_checkpoints (size, note, integrated_ns) "
                    "VALUES (?, ?, ?)"));
      cp_q->BindU(1, batch.first_index + batch.leaves.size())
          .BindBlob(2, batch.checkpoint)
          .Bind(3, ToNs(batch.integrated));
      SP_RETURN_IF_ERROR(cp_q->Exec());
      return absl::OkStatus();
    });
  }

  absl::StatusOr<uint64_t> LogSize() override {
    ReadConnection c(this);
    return LogSizeOn(*c);
  }

  absl::StatusOr<std::vector<merkle::Hash>> GetLogNodes(
      absl::Span<const merkle::NodeId> ids) override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(
        auto q, c->Prepare("SELECT hash FROM log_nodes WHERE node_key = ?"));
    std::vector<merkle::Hash> out;
    out.reserve(ids.size());
    for (const merkle::NodeId& id : ids) {
      q->BindU(1, NodeKey(id));
      SP_ASSIGN_OR_RETURN(bool row, q->Step());
      if (!row) {
        return absl::NotFoundError(
            absl::StrCat("log has no node (", id.level, ", ", id.index, ")"));
      }
      SP_ASSIGN_OR_RETURN(merkle::Hash h, q->HashAt(0));
      out.push_back(h);
      q->Reset();
    }
    return out;
  }

  absl::StatusOr<LogLeaf> GetLogLeaf(uint64_t index) override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(
        auto q,
        c->Prepare(
            "SELECT trace_id, leaf, leaf_hash FROM log_leaves WHERE idx = ?"));
    q->BindU(1, index);
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return absl::NotFoundError(absl::StrCat("no log leaf ", index));
    LogLeaf leaf;
    leaf.index = index;
    leaf.trace_id = q->Text(0);
    leaf.leaf = q->Blob(1);
    SP_ASSIGN_OR_RETURN(leaf.leaf_hash, q->HashAt(2));
    return leaf;
  }

  absl::StatusOr<LogCheckpointRow> LatestLogCheckpoint() override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(
        auto q,
        c->Prepare("SELECT size, note, integrated_ns FROM log_checkpoints "
                   "ORDER BY size DESC LIMIT 1"));
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return absl::NotFoundError("the log has no checkpoint yet");
    return LogCheckpointRow{q->UInt(0), q->Blob(1), FromNs(q->Int(2))};
  }

  absl::StatusOr<LogCheckpointRow> GetLogCheckpoint(uint64_t size) override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(
        auto q,
        c->Prepare("SELECT size, note, integrated_ns FROM log_checkpoints "
                   "WHERE size = ?"));
    q->BindU(1, size);
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) {
      return absl::NotFoundError(
          absl::StrCat("no log checkpoint of size ", size));
    }
    return LogCheckpointRow{q->UInt(0), q->Blob(1), FromNs(q->Int(2))};
  }

  absl::Status PutAnchor(const Anchor& a) override {
    return RunWrite([&](Connection& w) -> absl::Status {
      {
        SP_ASSIGN_OR_RETURN(
            auto q, w.Prepare("SELECT 1 FROM log_checkpoints WHERE size = ?"));
        q->BindU(1, a.log_size);
        SP_ASSIGN_OR_RETURN(bool row, q->Step());
        if (!row) {
          return absl::NotFoundError(absl::StrCat("no log checkpoint of size ",
                                                  a.log_size, " to anchor"));
        }
      }
      {
        SP_ASSIGN_OR_RETURN(
            auto q,
            w.Prepare(
                "SELECT 1 FROM anchors WHERE chain_id = ? AND tx_hash = ?"));
        q->BindU(1, a.chain_id).Bind(2, a.tx_hash);
        SP_ASSIGN_OR_RETURN(bool row, q->Step());
        if (row) {
          return absl::AlreadyExistsError(absl::StrCat("anchor ", a.tx_hash,
                                                       " on chain ", a.chain_id,
                                                       " is already recorded"));
        }
      }
      {
        SP_ASSIGN_OR_RETURN(
            auto q,
            w.Prepare(
                "INSERT INTO anchors (log_size, chain_id, contract, tx_hash, "
                "block_number, time_ns) VALUES (?, ?, ?, ?, ?, ?)"));
        q->BindU(1, a.log_size)
            .BindU(2, a.chain_id)
            .Bind(3, a.contract)
            .Bind(4, a.tx_hash)
            .BindU(5, a.block_number)
            .Bind(6, ToNs(a.time));
        SP_RETURN_IF_ERROR(q->Exec());
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::optional<Anchor>> FirstAnchorCovering(
      uint64_t log_index) override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(
        auto q,
        c->Prepare(
            "SELECT log_size, chain_id, contract, tx_hash, block_number, "
            "time_ns "
            "FROM anchors WHERE log_size > ? ORDER BY log_size, id LIMIT 1"));
    q->BindU(1, log_index);
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return std::optional<Anchor>();
    return std::optional<Anchor>(ReadAnchor(*q));
  }

  absl::StatusOr<std::vector<Anchor>> ListAnchors() override {
    ReadConnection c(this);
    SP_ASSIGN_OR_RETURN(auto q,
                        c->Prepare("SELECT log_size, chain_id, contract, "
                                   "tx_hash, block_number, time_ns "
                                   "FROM anchors ORDER BY log_size, id"));
    std::vector<Anchor> out;
    while (true) {
      SP_ASSIGN_OR_RETURN(bool row, q->Step());
      if (!row) break;
      out.push_back(ReadAnchor(*q));
    }
    return out;
  }

 private:
  // Borrows a read connection from the pool for one call.
  class ReadConnection {
   public:
    explicit ReadConnection(SqliteProvenanceStore* s) : s_(s) {
      absl::MutexLock lock(&s_->pool_mu_);
      s_->pool_mu_.Await(absl::Condition(
          +[](std::vector<Connection*>* v) { return !v->empty(); },
          &s_->free_readers_));
      c_ = s_->free_readers_.back();
      s_->free_readers_.pop_back();
    }
    ~ReadConnection() {
      absl::MutexLock lock(&s_->pool_mu_);
      s_->free_readers_.push_back(c_);
    }
    Connection* operator->() { return c_; }
    Connection& operator*() { return *c_; }

   private:
    SqliteProvenanceStore* s_;
    Connection* c_;
  };

  static absl::StatusOr<TraceRecord> ReadTrace(Query& q) {
    TraceRecord t;
    t.seq = q.UInt(0);
    t.trace_id = q.Text(1);
    t.header = q.Blob(2);
    int64_t state = q.Int(3);
    if (state < 0 || state > 2) {
      return absl::DataLossError(
          absl::StrCat("trace ", t.trace_id, " has unknown state ", state));
    }
    t.state = static_cast<TraceState>(state);
    t.created = FromNs(q.Int(4));
    t.size = q.UInt(5);
    t.latest_checkpoint = q.Blob(6);
    t.final_checkpoint = q.Blob(7);
    if (!q.IsNull(8)) t.log_index = q.UInt(8);
    t.promise = q.Blob(9);
    return t;
  }

  static Anchor ReadAnchor(Query& q) {
    Anchor a;
    a.log_size = q.UInt(0);
    a.chain_id = q.UInt(1);
    a.contract = q.Text(2);
    a.tx_hash = q.Text(3);
    a.block_number = q.UInt(4);
    a.time = FromNs(q.Int(5));
    return a;
  }

  static absl::StatusOr<uint64_t> LogSizeOn(Connection& c) {
    SP_ASSIGN_OR_RETURN(
        auto q,
        c.Prepare("SELECT coalesce(max(size), 0) FROM log_checkpoints"));
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    return row ? q->UInt(0) : 0;
  }

  // (state, size) of a trace; NOT_FOUND.
  static absl::StatusOr<std::pair<TraceState, uint64_t>> StateOn(
      Connection& w, const std::string& trace_id) {
    SP_ASSIGN_OR_RETURN(
        auto q, w.Prepare("SELECT state, size FROM traces WHERE trace_id = ?"));
    q->Bind(1, trace_id);
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) {
      return absl::NotFoundError(absl::StrCat("unknown trace ", trace_id));
    }
    return std::make_pair(static_cast<TraceState>(q->Int(0)), q->UInt(1));
  }

  static absl::Status WriteLeafOn(Connection& w, const TraceLeafWrite& leaf) {
    SP_ASSIGN_OR_RETURN(auto state, StateOn(w, leaf.trace_id));
    if (state.first != TraceState::kOpen) {
      return absl::FailedPreconditionError(
          absl::StrCat("trace ", leaf.trace_id, " is not open"));
    }
    if (leaf.index != state.second) {
      return absl::FailedPreconditionError(
          absl::StrCat("trace ", leaf.trace_id, " has ", state.second,
                       " leaves; cannot write leaf ", leaf.index));
    }
    {
      SP_ASSIGN_OR_RETURN(
          auto q,
          w.Prepare("INSERT INTO steps (trace_id, idx, record, leaf_hash) "
                    "VALUES (?, ?, ?, ?)"));
      q->Bind(1, leaf.trace_id)
          .BindU(2, leaf.index)
          .BindBlob(3, leaf.encoded_record)
          .BindBlob(4, leaf.leaf_hash);
      SP_RETURN_IF_ERROR(q->Exec());
    }
    {
      SP_ASSIGN_OR_RETURN(
          auto q,
          w.Prepare(
              "INSERT OR REPLACE INTO trace_nodes (trace_id, node_key, hash) "
              "VALUES (?, ?, ?)"));
      for (const StoredNode& n : leaf.new_nodes) {
        q->Bind(1, leaf.trace_id).BindU(2, NodeKey(n.id)).BindBlob(3, n.hash);
        SP_RETURN_IF_ERROR(q->Exec());
        q->Reset();
      }
    }
    {
      SP_ASSIGN_OR_RETURN(
          auto q,
          w.Prepare("INSERT INTO trace_checkpoints (trace_id, size, note) "
                    "VALUES (?, ?, ?)"));
      q->Bind(1, leaf.trace_id)
          .BindU(2, leaf.index + 1)
          .BindBlob(3, leaf.signed_checkpoint);
      SP_RETURN_IF_ERROR(q->Exec());
    }
    {
      SP_ASSIGN_OR_RETURN(
          auto q, w.Prepare("UPDATE traces SET size = ? WHERE trace_id = ?"));
      q->BindU(1, leaf.index + 1).Bind(2, leaf.trace_id);
      SP_RETURN_IF_ERROR(q->Exec());
    }
    return absl::OkStatus();
  }

  // ---- Group commit ----
  //
  // Every write is one WriteOp. Concurrent callers queue their ops; one of
  // them (the leader) runs everything queued in a single transaction, each op
  // under its own SAVEPOINT (so a failing op is rolled back alone and reports
  // its own error), then commits once: one fsync serves every op in the
  // group. No caller returns before the COMMIT that holds its op is in the
  // WAL file (it survives a crash of this process); a kSynced op also waits
  // for the fsync of the WAL, which makes every earlier commit durable too.
  // A group with any kSynced op commits with synchronous=FULL, one of only
  // kDeferred ops with synchronous=NORMAL (no fsync).
  enum class Sync { kSynced, kDeferred };
  using WriteOp = std::function<absl::Status(Connection&)>;
  struct PendingWrite {
    const WriteOp* op;
    Sync sync;
    absl::Status result;
    bool done = false;
  };

  absl::Status RunWrite(const WriteOp& op, Sync sync = Sync::kSynced) {
    PendingWrite me{&op, sync, absl::OkStatus(), false};
    absl::MutexLock lock(&queue_mu_);
    queue_.push_back(&me);
    while (!me.done) {
      if (leader_active_) {
        auto done_or_free = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
          return me.done || !leader_active_;
        };
        queue_mu_.Await(absl::Condition(&done_or_free));
        continue;
      }
      leader_active_ = true;
      std::vector<PendingWrite*> group;
      group.swap(queue_);
      queue_mu_.Unlock();
      RunGroup(group);
      queue_mu_.Lock();
      for (PendingWrite* w : group) w->done = true;
      leader_active_ = false;
    }
    return me.result;
  }

  // Runs `group` in one transaction on the writer connection. Only the
  // leader calls this, so the writer connection is never shared.
  void RunGroup(const std::vector<PendingWrite*>& group) {
    Connection& w = *writer_;
    bool sync = false;
    for (const PendingWrite* p : group) sync = sync || p->sync == Sync::kSynced;
    if (sync != writer_synchronous_full_) {
      absl::Status mode = w.Run(sync ? "PRAGMA synchronous = FULL"
                                     : "PRAGMA synchronous = NORMAL");
      if (!mode.ok()) {
        for (PendingWrite* p : group) p->result = mode;
        return;
      }
      writer_synchronous_full_ = sync;
    }
    absl::Status begin = w.Run("BEGIN IMMEDIATE");
    if (!begin.ok()) {
      for (PendingWrite* p : group) p->result = begin;
      return;
    }
    // A group of one needs no savepoint: if its op fails, the whole
    // transaction is rolled back below.
    const bool savepoints = group.size() > 1;
    bool any_ok = false;
    for (size_t i = 0; i < group.size(); ++i) {
      PendingWrite* p = group[i];
      absl::Status s = savepoints ? w.Run("SAVEPOINT op") : absl::OkStatus();
      if (s.ok()) {
        s = (*p->op)(w);
        if (savepoints) {
          if (!s.ok()) w.Run("ROLLBACK TO op").IgnoreError();
          absl::Status r = w.Run("RELEASE op");
          if (s.ok()) s = r;
        }
      }
      p->result = s;
      any_ok = any_ok || s.ok();
      if (sqlite3_get_autocommit(w.db()) != 0) {
        // SQLite rolled the whole transaction back (I/O error, disk full):
        // the group's earlier writes are gone too, and later ones must not
        // run outside a transaction. Everyone gets an error.
        absl::Status lost = absl::UnavailableError(absl::StrCat(
            "write transaction rolled back by SQLite: ",
            s.ok() ? "unknown cause" : s.message()));
        for (size_t j = 0; j < group.size(); ++j) {
          if (j > i || group[j]->result.ok()) group[j]->result = lost;
        }
        return;
      }
    }
    if (!any_ok) {
      w.Exec("ROLLBACK").IgnoreError();
      return;
    }
    absl::Status commit = w.Run("COMMIT");
    if (!commit.ok()) {
      w.Exec("ROLLBACK").IgnoreError();
      for (PendingWrite* p : group) {
        if (p->result.ok()) p->result = commit;
      }
    }
  }

  // Used only by the group-commit leader (RunGroup).
  std::unique_ptr<Connection> writer_;
  bool writer_synchronous_full_ = true;  // opened with synchronous = FULL
  absl::Mutex queue_mu_;
  std::vector<PendingWrite*> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool leader_active_ ABSL_GUARDED_BY(queue_mu_) = false;

  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> readers_;
  std::vector<Connection*> free_readers_ ABSL_GUARDED_BY(pool_mu_);
};

}  // namespace

int SqliteSchemaVersion() { return kNumMigrations; }

absl::StatusOr<std::unique_ptr<ProvenanceStore>> OpenSqliteProvenanceStore(
    const std::string& path, const SqliteStoreOptions& options) {
  if (options.read_connections < 1) {
    return absl::InvalidArgumentError("read_connections must be >= 1");
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && !options.create_if_missing) {
    return absl::FailedPreconditionError(absl::StrCat(path, " does not exist"));
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
              (options.create_if_missing ? SQLITE_OPEN_CREATE : 0);
  SP_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer,
                      Connection::Open(path, flags, options.busy_timeout_ms));
  // Identity and damage checks come before anything that writes (WAL mode
  // switch, migrations), so a foreign or damaged file is left untouched.
  SP_RETURN_IF_ERROR(CheckIdentity(*writer, path));
  if (options.quick_check_on_open)
    SP_RETURN_IF_ERROR(QuickCheck(*writer, path));
  {
    // journal_mode returns the mode in force; anything but "wal" (e.g. a
    // read-only medium) is refused rather than silently running without WAL.
    SP_ASSIGN_OR_RETURN(auto q, writer->Prepare("PRAGMA journal_mode = WAL"));
    SP_ASSIGN_OR_RETURN(bool row, q->Step());
    std::string mode = row ? q->Text(0) : "";
    if (mode != "wal") {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": cannot enable WAL journal mode (got '", mode, "')"));
    }
  }
  // See sqlite_store.h: FULL makes every commit durable against power loss.
  SP_RETURN_IF_ERROR(writer->Exec("PRAGMA synchronous = FULL"));
  SP_RETURN_IF_ERROR(Migrate(*writer, path));

  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < options.read_connections; ++i) {
    SP_ASSIGN_OR_RETURN(
        std::unique_ptr<Connection> r,
        Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                         options.busy_timeout_ms));
    SP_RETURN_IF_ERROR(r->Exec("PRAGMA query_only = 1"));
    readers.push_back(std::move(r));
  }
  return std::unique_ptr<ProvenanceStore>(
      new SqliteProvenanceStore(std::move(writer), std::move(readers)));
}

}  // namespace stepproof::provenance
