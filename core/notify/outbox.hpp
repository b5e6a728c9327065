// The daemons' outbox: the mails pli-linkd and pli-milter send after a commit (the buyer's
// read and failure notifications, the reply notice, the buyers' area login links) leave from
// one background thread, so that no HTTP or SMTP answer waits for a PDF or for Postfix, and a
// mail the re-injection listener refuses is tried again later instead of being lost.
//
// A job returns true when it is done (sent, or nothing to send), false to be tried again
// after the next delay of `retry_delays`; after the last one it is given up with a log line.
//
// Jobs pushed with a Record are kept on disk, one file each in the Persistence directory,
// from push() until they are done or given up (written before push returns, synced to disk
// when a first attempt fails and the job has to wait): a new Outbox on the same directory
// (the daemon restarted, or after a crash) rebuilds them with `revive` and runs them first.
// Jobs without a Record (login links: short-lived, and their link must not sit on disk) are
// in memory only: still waiting at stop, they are logged and dropped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pli::notify {

class Outbox
{
public:
  using Job = std::function<bool()>;
  using Delays = std::vector<std::chrono::milliseconds>;

  // What a durable job is made of: its kind and the bytes `revive` needs to rebuild it.
  struct Record
  {
    std::string kind;
    std::string payload;
  };
  struct Persistence
  {
    std::filesystem::path dir; // created if missing
    // The job of a record left by a previous run; an empty Job when the record is not
    // understood (logged and removed).
    std::function<Job(const Record&)> revive;
  };

  // Default delays: 30 s, 2 min, 10 min, 30 min, 1 h. With `persistence`, the jobs left in
  // its directory are queued first (their files read before the constructor returns).
  explicit Outbox(Delays retry_delays = default_delays(), std::size_t max_jobs = 10000,
                  std::optional<Persistence> persistence = std::nullopt);
  // Runs the jobs already due, then stops; durable jobs waiting for a retry stay on disk
  // for the next run, the others are logged and dropped.
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Queues a job; `what` names it in log lines. With a `record` (and persistence), the job is
  // written to disk first. False (and a log line) when the queue is full or the record cannot
  // be written.
  bool push(std::string what, Job job, std::optional<Record> record = std::nullopt);
  // Jobs queued or waiting for a retry.
  std::size_t pending() const;

  static Delays default_delays();

private:
  struct Entry
  {
    std::string what;
    Job job;
    std::size_t attempts = 0;
    std::chrono::steady_clock::time_point due;
    std::filesystem::path file; // a durable job's record, empty otherwise
  };
  void run();
  void queue_due_now(Entry e); // under m_mutex
  std::optional<std::filesystem::path> write_record(const std::string& what, const Record& r);
  void revive_records();

  const Delays m_delays;
  const std::size_t m_max;
  const std::optional<Persistence> m_persist;
  std::uint64_t m_seq = 0; // record file names, under m_mutex
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Entry> m_jobs; // in order of `due`
  bool m_stopping = false;
  std::thread m_thread; // last: started when everything above exists
};

} // namespace pli::notify
