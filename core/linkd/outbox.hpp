// pli-linkd's outbox: the mails it sends after a commit (the buyer's read notification with
// its receipt, the reply notice, the buyers' area login links) leave from one background
// thread, so that no HTTP answer waits for a PDF or for Postfix, and a mail the
// re-injection listener refuses is tried again later instead of being lost.
//
// A job returns true when it is done (sent, or nothing to send), false to be tried again
// after the next delay of `retry_delays`; after the last one it is given up with a log line.
// The queue is in memory: jobs still waiting for a retry when the daemon stops are logged
// (one line each) and dropped; the events they announce are in the store either way.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pli::linkd {

class Outbox
{
public:
  using Job = std::function<bool()>;
  using Delays = std::vector<std::chrono::milliseconds>;

  // Default delays: 30 s, 2 min, 10 min, 30 min, 1 h.
  explicit Outbox(Delays retry_delays = default_delays(), std::size_t max_jobs = 10000);
  // Runs the jobs already due, then stops; logs and drops those waiting for a retry.
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Queues a job; `what` names it in log lines. False (and a log line) when the queue is
  // full.
  bool push(std::string what, Job job);
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
  };
  void run();

  const Delays m_delays;
  const std::size_t m_max;
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Entry> m_jobs; // in order of `due`
  bool m_stopping = false;
  std::thread m_thread; // last: started when everything above exists
};

} // namespace pli::linkd
