// The job ledger: one SQLite database per output directory (<out>/ledger.sqlite) recording, per video,
// where it stands (queued, running, done, failed), its last error, attempts, frames and times. It is what
// lets an interrupted job resume: a rerun skips the videos that are done, retries the failed ones and
// restarts the ones a killed run left running.
//
// Durability: WAL journal with synchronous=FULL, so every state change is on disk when its call returns
// (a crash, or a power loss, right after MarkDone cannot lose it); each state change is one transaction.
// The busy timeout lets several processes (the multi-process mode) share the file. A connection is guarded
// by a mutex, so one JobLedger may be used from several threads.
//
// The ledger also remembers the configuration fingerprint of the job that made it (model, sampling,
// thresholds: whatever changes the results, as a string the caller builds). Resuming with another
// configuration would mix results of two configurations in one directory, so Open() refuses it unless
// `force` is given, which forgets every previous result.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "job/inputs.h"

namespace vidscan {

enum class VideoState : uint8_t { kQueued, kRunning, kDone, kFailed };
const char* VideoStateName(VideoState state);  // "queued", "running", "done", "failed"

struct LedgerEntry {
  std::string key;
  std::string path;  // the video's absolute path
  VideoState state = VideoState::kQueued;
  std::string error;                        // the last failure's message ("" when none)
  int attempts = 0;                         // times MarkRunning was called for it, over all runs
  std::optional<int64_t> frames;            // frames analysed, once done
  std::string started_at;                   // last MarkRunning, ISO 8601 UTC ("2024-05-01T12:00:00.123Z")
  std::string finished_at;                  // last MarkDone / MarkFailed
  std::optional<double> wall_seconds;       // of the last attempt, as the caller measured it
};

// A video Plan() says must run now, and why.
struct PlannedVideo {
  VideoInput input;
  // kQueued: new, or registered by an earlier run that never started it; kRunning: left running by a run
  // that was killed (its partial outputs are to be discarded); kFailed: failed before and retried now.
  VideoState previous_state = VideoState::kQueued;
  int previous_attempts = 0;
  std::string previous_error;
};

struct LedgerPlan {
  std::vector<PlannedVideo> to_run;  // in input order
  int64_t already_done = 0;          // done in an earlier run: skipped
  int64_t interrupted = 0;           // found running (a killed run): restarted
  int64_t retried = 0;               // found failed: retried
  int64_t input_errors = 0;          // inputs that cannot be read: recorded as failed, not run
};

struct LedgerCounts {
  int64_t queued = 0, running = 0, done = 0, failed = 0;
  int64_t total() const { return queued + running + done + failed; }
};

class JobLedger {
 public:
  // Opens or creates the database. An existing ledger made with another fingerprint is an error that tells
  // the user to pass --force or pick another output directory; with force every video is forgotten (and
  // so re-queued by the next Plan) and the new fingerprint recorded.
  static Expected<JobLedger> Open(const std::string& path, const std::string& config_fingerprint, bool force);
  JobLedger(JobLedger&&) noexcept;
  JobLedger& operator=(JobLedger&&) noexcept;
  ~JobLedger();

  // Registers the inputs (new ones as queued; those with VideoInput::error as failed with that error) and
  // returns what must run now: queued, failed (retried) and running (restarted) videos; done ones are
  // skipped. Videos in the ledger but not among the inputs are left as they are. A key the ledger knows
  // under another path is an error (the output folder would mix two videos). One transaction.
  Expected<LedgerPlan> Plan(std::span<const VideoInput> inputs);

  // State changes, one transaction each. MarkRunning: from any state but done; counts an attempt, clears
  // the last error. MarkDone: from running; `frames` = frames analysed. MarkFailed: from queued or running.
  Status MarkRunning(const std::string& key);
  Status MarkDone(const std::string& key, int64_t frames, double wall_seconds);
  Status MarkFailed(const std::string& key, const std::string& error,
                    std::optional<double> wall_seconds = std::nullopt);

  // Over the whole ledger (every video this output directory has seen).
  Expected<LedgerCounts> Counts();
  // Entries in registration order, all or those in one state (e.g. failed, with their errors).
  Expected<std::vector<LedgerEntry>> Entries(std::optional<VideoState> state = std::nullopt);
  // kNotFound when the ledger does not know the key.
  Expected<LedgerEntry> Get(const std::string& key);

  const std::string& path() const;
  const std::string& config_fingerprint() const;

 private:
  struct Impl;
  explicit JobLedger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vidscan
