#include "core/notify/outbox.hpp"

#include "core/config/config.hpp"
#include "core/log/log.hpp"

#include <algorithm>
#include <exception>
#include <fstream>
#include <iterator>
#include <system_error>

namespace pli::notify {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_magic = "pli-outbox 1\n";
constexpr std::size_t k_batch = 16; // jobs claimed at once

util::Micros micros(std::chrono::milliseconds d)
{
  return static_cast<util::Micros>(d.count()) * 1000;
}

std::string job_name(const store::ClaimedJob& j)
{
  return j.job.kind + " " + std::to_string(j.id);
}

} // namespace

Outbox::Delays Outbox::default_delays()
{
  return delays_from(30s);
}

Outbox::Delays Outbox::delays_from(std::chrono::seconds first)
{
  // 30 s, 2 min, 10 min, 30 min, 1 h for a first delay of 30 s.
  Delays out;
  for (int factor : {2, 8, 40, 120, 240}) {
    out.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(first) * factor / 2);
  }
  return out;
}

Outbox::Options Outbox::options_from(const config::Config& config)
{
  Options o;
  o.retry_delays =
      delays_from(std::chrono::seconds(static_cast<long>(config.notify.retry_first_seconds)));
  o.lease = std::chrono::seconds(static_cast<long>(config.notify.lease_seconds));
  o.poll = std::chrono::seconds(static_cast<long>(config.notify.poll_seconds));
  return o;
}

std::string Outbox::message_id(const store::ClaimedJob& job, const std::string& domain)
{
  return "job." + job.job.queue + "." + std::to_string(job.id) + "." +
         std::to_string(job.created_at) + "@" + domain;
}

Outbox::Outbox(store::Store& store, std::string queue, Runner runner, Options options)
    : m_store(store), m_queue(std::move(queue)), m_runner(std::move(runner)),
      m_options(std::move(options)), m_thread([this] { run(); })
{
}

Outbox::~Outbox()
{
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  m_thread.join();
}

void Outbox::wake()
{
  {
    std::lock_guard lock(m_mutex);
    m_woken = true;
  }
  m_cv.notify_all();
}

bool Outbox::enqueue(const std::string& kind, const std::string& payload)
{
  auto id = m_store.enqueue(store::Job{m_queue, kind, payload}, m_options.clock());
  if (!id) {
    log::line(log::Level::error, "",
              {{"outbox", "enqueue_failed"}, {"job", kind}, {"store", id.error().message}});
    return false;
  }
  wake();
  return true;
}

bool Outbox::import_legacy()
{
  if (m_options.legacy_dir.empty()) {
    return true;
  }
  std::error_code ec;
  if (!fs::exists(m_options.legacy_dir, ec)) {
    return true;
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(m_options.legacy_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const auto ext = it->path().extension();
    if (ext == ".job") {
      files.push_back(it->path());
    } else if (ext == ".tmp") {
      fs::remove(it->path(), ec); // cut short while being written: never queued
    }
  }
  std::sort(files.begin(), files.end()); // named by creation time
  bool all = true;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pli-outbox 1\n" kind "\n" what "\n" payload
    std::optional<std::string> payload;
    std::string kind;
    if (bytes.compare(0, k_magic.size(), k_magic) == 0) {
      const auto kind_end = bytes.find('\n', k_magic.size());
      const auto what_end =
          kind_end == std::string::npos ? std::string::npos : bytes.find('\n', kind_end + 1);
      if (what_end != std::string::npos) {
        kind = bytes.substr(k_magic.size(), kind_end - k_magic.size());
        payload = bytes.substr(what_end + 1);
        if (m_options.upgrade) {
          payload = m_options.upgrade(kind, *payload);
        }
      }
    }
    if (!payload) {
      log::line(log::Level::error, "",
                {{"outbox", "record_unusable"}, {"file", file.string()}, {"kind", kind}});
    } else if (auto id = m_store.enqueue(store::Job{m_queue, kind, *payload}, m_options.clock());
               !id) {
      all = false; // the store is down: tried again later, the file stays
      continue;
    } else {
      log::line(log::Level::info, "",
                {{"outbox", "imported"}, {"job", kind + " " + std::to_string(id.value())}});
    }
    std::error_code rm;
    fs::remove(file, rm);
  }
  return all;
}

void Outbox::run_job(const store::ClaimedJob& job)
{
  bool done = false;
  try {
    done = m_runner(job);
  } catch (const std::exception& ex) {
    log::line(log::Level::error, "",
              {{"outbox", "error"}, {"job", job_name(job)}, {"error", ex.what()}});
  }
  const auto& delays = m_options.retry_delays;
  util::Result<util::Unit> st = util::Unit{};
  if (done) {
    st = m_store.finish_job(job.id);
  } else if (job.attempts > delays.size()) {
    log::line(log::Level::error, "", {{"outbox", "given_up"}, {"job", job_name(job)}});
    st = m_store.finish_job(job.id);
  } else {
    const auto delay = delays[job.attempts == 0 ? 0 : job.attempts - 1];
    log::line(log::Level::warning, "",
              {{"outbox", "retry_later"},
               {"job", job_name(job)},
               {"in_seconds",
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(delay).count())}});
    const util::Micros due = m_options.clock() + micros(delay);
    st = m_store.retry_job(job.id, due);
    if (st) {
      m_retries.push_back(due); // the thread looks again then, whatever the poll
    }
  }
  if (!st) {
    // Its lease ends anyway: the job is claimed again then (sent twice when it was sent).
    log::line(log::Level::error, "",
              {{"outbox", "not_recorded"}, {"job", job_name(job)}, {"store", st.error().message}});
  }
}

void Outbox::run()
{
  bool imported = false;
  bool store_down = false;
  auto backoff = m_options.poll;
  for (;;) {
    {
      std::lock_guard lock(m_mutex);
      if (m_stopping) {
        return;
      }
      m_woken = false;
    }
    if (!imported) {
      imported = import_legacy();
    }
    const util::Micros now = m_options.clock();
    // Those due now: this claim takes them (or another process did).
    m_retries.erase(std::remove_if(m_retries.begin(), m_retries.end(),
                                   [now](util::Micros t) { return t <= now; }),
                    m_retries.end());
    auto claimed = m_store.claim_jobs(m_queue, now, micros(m_options.lease), k_batch);
    std::chrono::milliseconds wait = m_options.poll;
    if (!claimed) {
      if (!store_down) {
        log::line(log::Level::error, "",
                  {{"outbox", "store_unavailable"}, {"store", claimed.error().message}});
        store_down = true;
        backoff = m_options.poll;
      } else {
        backoff = std::min<std::chrono::milliseconds>(
            backoff * 2, std::max(m_options.poll, std::chrono::milliseconds(60s)));
      }
      wait = backoff;
    } else {
      if (store_down) {
        log::line(log::Level::info, "", {{"outbox", "store_back"}});
        store_down = false;
      }
      const auto& jobs = claimed.value();
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        bool stopping = false;
        {
          std::lock_guard lock(m_mutex);
          stopping = m_stopping;
        }
        if (stopping) {
          // Not run: given back, due now, for the next process to claim.
          for (std::size_t k = i; k < jobs.size(); ++k) {
            (void)m_store.retry_job(jobs[k].id, m_options.clock());
          }
          return;
        }
        run_job(jobs[i]);
      }
      if (jobs.size() == k_batch) {
        continue; // more may be due
      }
      if (!m_retries.empty()) {
        const util::Micros in =
            *std::min_element(m_retries.begin(), m_retries.end()) - m_options.clock();
        if (in <= 0) {
          continue;
        }
        wait = std::min(wait, std::chrono::milliseconds(in / 1000 + 1));
      }
    }
    std::unique_lock lock(m_mutex);
    m_cv.wait_for(lock, wait, [this] { return m_stopping || m_woken; });
  }
}

} // namespace pli::notify
