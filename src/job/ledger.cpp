#include "job/ledger.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <set>
#include <utility>

namespace vidscan {
namespace {

constexpr int kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 30000;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS videos (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- registration order
  key          TEXT NOT NULL UNIQUE,
  path         TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
  error        TEXT,
  attempts     INTEGER NOT NULL DEFAULT 0,
  frames       INTEGER,
  started_at   TEXT,
  finished_at  TEXT,
  wall_seconds REAL
);
)sql";

std::string NowUtc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(millis));
}

std::optional<VideoState> ParseState(std::string_view s) {
  if (s == "queued") return VideoState::kQueued;
  if (s == "running") return VideoState::kRunning;
  if (s == "done") return VideoState::kDone;
  if (s == "failed") return VideoState::kFailed;
  return std::nullopt;
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;

// One prepared statement; finalized on destruction.
class Statement {
 public:
  Statement(sqlite3_stmt* stmt, sqlite3* db, const std::string* ledger_path)
      : stmt_(stmt), db_(db), ledger_path_(ledger_path) {}
  Statement(Statement&& other) noexcept
      : stmt_(std::exchange(other.stmt_, nullptr)), db_(other.db_), ledger_path_(other.ledger_path_) {}
  Statement(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  Statement& Bind(int index, const std::string& text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int index, int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  Statement& Bind(int index, double value) {
    sqlite3_bind_double(stmt_, index, value);
    return *this;
  }
  Statement& BindNull(int index) {
    sqlite3_bind_null(stmt_, index);
    return *this;
  }

  // true: a row is ready; false: done.
  Expected<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return MakeError(rc == SQLITE_BUSY ? StatusCode::kUnavailable : StatusCode::kIoError,
                     fmt::format("{}: {}: {}", *ledger_path_, sqlite3_sql(stmt_), sqlite3_errmsg(db_)));
  }
  Status Run() {
    auto r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }

  std::string Text(int column) const {
    const unsigned char* t = sqlite3_column_text(stmt_, column);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, column)) : std::string();
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  double Double(int column) const { return sqlite3_column_double(stmt_, column); }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  sqlite3_stmt* stmt_;
  sqlite3* db_;
  const std::string* ledger_path_;
};

constexpr const char* kEntryColumns =
    "key, path, state, error, attempts, frames, started_at, finished_at, wall_seconds";

}  // namespace

const char* VideoStateName(VideoState state) {
  switch (state) {
    case VideoState::kQueued: return "queued";
    case VideoState::kRunning: return "running";
    case VideoState::kDone: return "done";
    case VideoState::kFailed: return "failed";
  }
  return "?";
}

struct JobLedger::Impl {
  std::string path;
  std::string fingerprint;
  DbHandle db;
  std::mutex mutex;  // one statement sequence at a time on the connection

  Status Error(const std::string& what) const {
    return MakeError(StatusCode::kIoError, fmt::format("{}: {}: {}", path, what, sqlite3_errmsg(db.get())));
  }

  Status Exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db.get(), sql, nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message ? message : sqlite3_errmsg(db.get());
      sqlite3_free(message);
      return MakeError(StatusCode::kIoError, fmt::format("{}: {}: {}", path, sql, text));
    }
    return Status::Ok();
  }

  Expected<Statement> Prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db.get(), sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK) {
      return Error(fmt::format("prepare '{}'", sql));
    }
    return Statement(stmt, db.get(), &path);
  }

  // BEGIN IMMEDIATE takes the write lock up front: two processes that both read and then write would
  // otherwise deadlock on the upgrade (and SQLite answers that with SQLITE_BUSY at once, not after the
  // timeout).
  template <typename Body>
  Status InTransaction(Body&& body) {
    VS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status status = body();
    if (status.ok()) status = Exec("COMMIT");
    if (!status.ok()) (void)Exec("ROLLBACK");
    return status;
  }

  static LedgerEntry ReadEntry(const Statement& s) {
    LedgerEntry e;
    e.key = s.Text(0);
    e.path = s.Text(1);
    e.state = ParseState(s.Text(2)).value_or(VideoState::kQueued);
    e.error = s.Text(3);
    e.attempts = static_cast<int>(s.Int(4));
    if (!s.IsNull(5)) e.frames = s.Int(5);
    e.started_at = s.Text(6);
    e.finished_at = s.Text(7);
    if (!s.IsNull(8)) e.wall_seconds = s.Double(8);
    return e;
  }

  Expected<std::optional<LedgerEntry>> Find(const std::string& key) {
    VS_ASSIGN_OR_RETURN(Statement s, Prepare(fmt::format("SELECT {} FROM videos WHERE key = ?", kEntryColumns)));
    s.Bind(1, key);
    VS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<LedgerEntry>();
    return std::optional<LedgerEntry>(ReadEntry(s));
  }

  // Checks the video's current state against what a transition allows, inside the caller's transaction.
  Status RequireState(const std::string& key, const char* transition, std::initializer_list<VideoState> allowed) {
    VS_ASSIGN_OR_RETURN(std::optional<LedgerEntry> entry, Find(key));
    if (!entry) {
      return MakeError(StatusCode::kNotFound, fmt::format("{}: {}: no video with key '{}'", path, transition, key));
    }
    for (VideoState s : allowed) {
      if (entry->state == s) return Status::Ok();
    }
    return MakeError(StatusCode::kInternal, fmt::format("{}: {}: video '{}' is {}", path, transition, key,
                                                        VideoStateName(entry->state)));
  }
};

JobLedger::JobLedger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JobLedger::JobLedger(JobLedger&&) noexcept = default;
JobLedger& JobLedger::operator=(JobLedger&&) noexcept = default;
JobLedger::~JobLedger() = default;

const std::string& JobLedger::path() const { return impl_->path; }
const std::string& JobLedger::config_fingerprint() const { return impl_->fingerprint; }

Expected<JobLedger> JobLedger::Open(const std::string& path, const std::string& config_fingerprint, bool force) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->fingerprint = config_fingerprint;
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) {
    return MakeError(StatusCode::kIoError, fmt::format("{}: cannot open the job ledger: {}", path,
                                                       raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  sqlite3_extended_result_codes(raw, 1);

  // The first statement that reads the file tells a database from something else.
  {
    auto not_a_ledger = [&] {
      return MakeError(StatusCode::kCorruptData,
                       fmt::format("{}: not a vidscan job ledger (SQLite: {})", path, sqlite3_errmsg(raw)));
    };
    auto prepared = impl->Prepare("PRAGMA journal_mode = WAL");
    if (!prepared.ok()) return not_a_ledger();
    Statement& s = *prepared;
    auto row = s.Step();
    if (!row.ok()) return not_a_ledger();
    if (!*row || s.Text(0) != "wal") {
      return MakeError(StatusCode::kIoError,
                       fmt::format("{}: the file system does not support SQLite's WAL journal (got '{}'); put "
                                   "the output directory on a local file system",
                                   path, *row ? s.Text(0) : std::string()));
    }
  }
  VS_RETURN_IF_ERROR(impl->Exec("PRAGMA synchronous = FULL"));
  Impl& db = *impl;
  Status status = db.InTransaction([&]() -> Status {
    VS_RETURN_IF_ERROR(db.Exec(kSchema));
    VS_ASSIGN_OR_RETURN(Statement read, db.Prepare("SELECT name, value FROM meta"));
    std::optional<std::string> version, fingerprint;
    for (;;) {
      VS_ASSIGN_OR_RETURN(bool row, read.Step());
      if (!row) break;
      if (read.Text(0) == "schema_version") version = read.Text(1);
      if (read.Text(0) == "config_fingerprint") fingerprint = read.Text(1);
    }
    if (version && *version != std::to_string(kSchemaVersion)) {
      return MakeError(StatusCode::kUnsupported,
                       fmt::format("{}: job ledger schema version {} (this vidscan reads {}); use another output "
                                   "directory",
                                   path, *version, kSchemaVersion));
    }
    if (fingerprint && *fingerprint != config_fingerprint) {
      if (!force) {
        return MakeError(StatusCode::kInvalidArgument,
                         fmt::format("{}: this output directory holds results of another configuration "
                                     "(ledger: '{}', now: '{}'); pass --force to discard them or choose another "
                                     "output directory",
                                     path, *fingerprint, config_fingerprint));
      }
    }
    if (force) VS_RETURN_IF_ERROR(db.Exec("DELETE FROM videos"));
    VS_ASSIGN_OR_RETURN(Statement write, db.Prepare("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?), (?, ?)"));
    write.Bind(1, std::string("schema_version")).Bind(2, std::to_string(kSchemaVersion));
    write.Bind(3, std::string("config_fingerprint")).Bind(4, config_fingerprint);
    return write.Run();
  });
  if (!status.ok()) return status;
  return JobLedger(std::move(impl));
}

Expected<LedgerPlan> JobLedger::Plan(std::span<const VideoInput> inputs) {
  Impl& db = *impl_;
  std::lock_guard lock(db.mutex);
  LedgerPlan plan;
  std::set<std::string> keys;
  for (const VideoInput& in : inputs) {
    if (!keys.insert(in.key).second) {
      return MakeError(StatusCode::kInvalidArgument,
                       fmt::format("{}: two inputs share the key '{}' ({})", db.path, in.key, in.path));
    }
  }
  const std::string now = NowUtc();
  Status status = db.InTransaction([&]() -> Status {
    for (const VideoInput& in : inputs) {
      VS_ASSIGN_OR_RETURN(std::optional<LedgerEntry> entry, db.Find(in.key));
      if (entry && entry->path != in.absolute_path) {
        return MakeError(StatusCode::kInvalidArgument,
                         fmt::format("{}: key '{}' belongs to {} in this ledger, but now names {}; pass --force "
                                     "or choose another output directory",
                                     db.path, in.key, entry->path, in.absolute_path));
      }
      if (entry && entry->state == VideoState::kDone) {
        ++plan.already_done;
        continue;
      }
      if (!in.error.empty()) {
        // Recorded as failed without an attempt: nothing ran. A rerun tries again if the file has appeared.
        ++plan.input_errors;
        VS_ASSIGN_OR_RETURN(Statement s, db.Prepare(
            "INSERT INTO videos (key, path, state, error, finished_at) VALUES (?1, ?2, 'failed', ?3, ?4) "
            "ON CONFLICT (key) DO UPDATE SET state = 'failed', error = ?3, finished_at = ?4, wall_seconds = NULL"));
        s.Bind(1, in.key).Bind(2, in.absolute_path).Bind(3, in.error).Bind(4, now);
        VS_RETURN_IF_ERROR(s.Run());
        continue;
      }
      PlannedVideo planned;
      planned.input = in;
      if (!entry) {
        VS_ASSIGN_OR_RETURN(Statement s, db.Prepare("INSERT INTO videos (key, path, state) VALUES (?, ?, 'queued')"));
        s.Bind(1, in.key).Bind(2, in.absolute_path);
        VS_RETURN_IF_ERROR(s.Run());
      } else {
        planned.previous_state = entry->state;
        planned.previous_attempts = entry->attempts;
        planned.previous_error = entry->error;
        if (entry->state == VideoState::kRunning) ++plan.interrupted;
        if (entry->state == VideoState::kFailed) ++plan.retried;
        if (entry->state != VideoState::kQueued) {
          // Back to queued until the pipeline picks it up; the last error stays until MarkRunning.
          VS_ASSIGN_OR_RETURN(Statement s, db.Prepare("UPDATE videos SET state = 'queued' WHERE key = ?"));
          s.Bind(1, in.key);
          VS_RETURN_IF_ERROR(s.Run());
        }
      }
      plan.to_run.push_back(std::move(planned));
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return plan;
}

Status JobLedger::MarkRunning(const std::string& key) {
  Impl& db = *impl_;
  std::lock_guard lock(db.mutex);
  return db.InTransaction([&]() -> Status {
    VS_RETURN_IF_ERROR(db.RequireState(key, "MarkRunning",
                                       {VideoState::kQueued, VideoState::kRunning, VideoState::kFailed}));
    VS_ASSIGN_OR_RETURN(Statement s, db.Prepare(
        "UPDATE videos SET state = 'running', attempts = attempts + 1, error = NULL, frames = NULL, "
        "started_at = ?, finished_at = NULL, wall_seconds = NULL WHERE key = ?"));
    s.Bind(1, NowUtc()).Bind(2, key);
    return s.Run();
  });
}

Status JobLedger::MarkDone(const std::string& key, int64_t frames, double wall_seconds) {
  Impl& db = *impl_;
  std::lock_guard lock(db.mutex);
  return db.InTransaction([&]() -> Status {
    VS_RETURN_IF_ERROR(db.RequireState(key, "MarkDone", {VideoState::kRunning}));
    VS_ASSIGN_OR_RETURN(Statement s, db.Prepare(
        "UPDATE videos SET state = 'done', error = NULL, frames = ?, finished_at = ?, wall_seconds = ? "
        "WHERE key = ?"));
    s.Bind(1, frames).Bind(2, NowUtc()).Bind(3, wall_seconds).Bind(4, key);
    return s.Run();
  });
}

Status JobLedger::MarkFailed(const std::string& key, const std::string& error, std::optional<double> wall_seconds) {
  Impl& db = *impl_;
  std::lock_guard lock(db.mutex);
  return db.InTransaction([&]() -> Status {
    VS_RETURN_IF_ERROR(db.RequireState(key, "MarkFailed", {VideoState::kQueued, VideoState::kRunning}));
    VS_ASSIGN_OR_RETURN(Statement s, db.Prepare(
        "UPDATE videos SET state = 'failed', error = ?, finished_at = ?, wall_seconds = ? WHERE key = ?"));
    s.Bind(1, error).Bind(2, NowUtc());
    if (wall_seconds) {
      s.Bind(3, *wall_seconds);
    } else {
      s.BindNull(3);
    }
    s.Bind(4, key);
    return s.Run();
  });
}

Expected<LedgerCounts> JobLedger::Counts() {
  Impl& db = *impl_;
  std::lock_guard lock(db.mutex);
  VS_ASSIGN_OR_RETURN(Statement s, db.Prepare("SELECT state, COUNT(*) FROM videos GROUP BY state"));
  LedgerCounts counts;
  for (;;) {
    VS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    const int64_t n = s.Int(1);
    switch (ParseState(s.Text(0)).value_or(VideoState::kQueued)) {
      case VideoState::kQueued: counts.queued += n; break;
      case VideoState::kRunning: counts.running += n; break;
      case VideoState::kDone: counts.done += n; break;
      case VideoState::kFailed: counts.failed += n; break;
    }
  }
  return counts;
}

Expected<std::vector<LedgerEntry>> JobLedger::Entries(std::optional<VideoState> state) {
  Impl& db = *impl_;
  std::lock_guard lock(db.mutex);
  VS_ASSIGN_OR_RETURN(Statement s, db.Prepare(fmt::format("SELECT {} FROM videos{} ORDER BY seq", kEntryColumns,
                                                          state ? " WHERE state = ?" : "")));
  if (state) s.Bind(1, std::string(VideoStateName(*state)));
  std::vector<LedgerEntry> entries;
  for (;;) {
    VS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    entries.push_back(Impl::ReadEntry(s));
  }
  return entries;
}

Expected<LedgerEntry> JobLedger::Get(const std::string& key) {
  Impl& db = *impl_;
  std::lock_guard lock(db.mutex);
  VS_ASSIGN_OR_RETURN(std::optional<LedgerEntry> entry, db.Find(key));
  if (!entry) return MakeError(StatusCode::kNotFound, fmt::format("{}: no video with key '{}'", db.path, key));
  return *entry;
}

}  // namespace vidscan
