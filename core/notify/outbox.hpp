// The daemons' outbox: the mails pli-linkd and pli-milter send after a commit (the buyer's
// read and failure notifications, the reply notice, the buyers' area login links), kept in
// the store as jobs (store::Job) and sent from one background thread, so that no HTTP or SMTP
// answer waits for a PDF or for Postfix, and a mail the re-injection listener refuses is
// tried again later instead of being lost.
//
// A transactional outbox: a job that follows an event is written in the event's own
// transaction (store::NewEvent::job), so a crash between the commit and the mail loses
// nothing; one without an event (a login link) is queued with enqueue(). Any process of the
// job's queue, on any host of a shared store, claims due jobs (store::Store::claim_jobs) with
// a lease: the claimer runs the job, then finishes it (done) or sets its next attempt; a
// process that dies holding a job lets another claim it once the lease has passed.
// At-least-once: a process that dies after Postfix's 250 and before finish_job lets the job
// be sent again after the lease (the mail's Message-ID, made from the job, shows it).
//
// The runner returns true when the job is done (sent, or nothing to send), false to try it
// again after the next delay of `retry_delays`; after the last one it is given up with a log
// line. Jobs that an earlier version left as files under `legacy_dir` are moved into the
// store at start (then the files go).
#pragma once

#include "core/store/store.hpp"
#include "core/util/time.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pli::config {
struct Config;
}

namespace pli::notify {

class Outbox
{
public:
  using Delays = std::vector<std::chrono::milliseconds>;
  using Runner = std::function<bool(const store::ClaimedJob&)>;

  struct Options
  {
    Delays retry_delays = default_delays();
    // How long a claimed job is kept from other claimers: longer than any send.
    std::chrono::milliseconds lease{std::chrono::minutes(5)};
    // How often the store is searched for due jobs queued or given back by other processes
    // (those of this one wake it at once).
    std::chrono::milliseconds poll{std::chrono::seconds(5)};
    // An earlier version's job files ("pli-outbox 1"), moved into the store at start; empty:
    // none.
    std::filesystem::path legacy_dir;
    // The payload of an earlier version's record of `kind` as it is queued now; nullopt when
    // the record is not understood (logged and removed). Unset: the payload as it is.
    std::function<std::optional<std::string>(const std::string& kind, const std::string& payload)>
        upgrade;
    util::Clock clock = util::now_micros;
  };

  // Starts the thread that claims and runs the jobs of `queue` ("linkd" | "milter").
  Outbox(store::Store& store, std::string queue, Runner runner, Options options);
  Outbox(store::Store& store, std::string queue, Runner runner)
      : Outbox(store, std::move(queue), std::move(runner), Options{})
  {
  }
  // Stops the thread: the job being run finishes; claimed jobs not yet run are given back
  // (due now); nothing is lost (every job is in the store).
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // A job of this queue was just committed (with an event): look for due jobs now.
  void wake();
  // Queues a job with no event (this queue) and wakes the thread. False (and a log line)
  // when the store refuses it.
  bool enqueue(const std::string& kind, const std::string& payload);

  // Default delays: 30 s, 2 min, 10 min, 30 min, 1 h.
  static Delays default_delays();
  // The default delays scaled so that the first is `first` (notify.retry_first_seconds).
  static Delays delays_from(std::chrono::seconds first);
  // The retry delays, lease and poll of notify.* in pli.yaml.
  static Options options_from(const config::Config& config);
  // A Message-ID (without <>) for the mail of a job: the same for every sending of the job.
  static std::string message_id(const store::ClaimedJob& job, const std::string& domain);

private:
  void run();
  // Moves the legacy files into the store; true once done (or nothing to do).
  bool import_legacy();
  // Runs one claimed job and records its outcome in the store.
  void run_job(const store::ClaimedJob& job);

  store::Store& m_store;
  const std::string m_queue;
  const Runner m_runner;
  const Options m_options;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_woken = false;
  std::vector<util::Micros> m_retries; // the retries this thread set (its thread only)
  bool m_stopping = false;
  std::thread m_thread; // last: started when everything above exists
};

} // namespace pli::notify
