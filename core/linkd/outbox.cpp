#include "core/linkd/outbox.hpp"

#include "core/log/log.hpp"

#include <algorithm>
#include <exception>

namespace pli::linkd {

using namespace std::chrono_literals;

Outbox::Delays Outbox::default_delays()
{
  return {30s, 2min, 10min, 30min, 1h};
}

Outbox::Outbox(Delays retry_delays, std::size_t max_jobs)
    : m_delays(std::move(retry_delays)), m_max(max_jobs), m_thread([this] { run(); })
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

bool Outbox::push(std::string what, Job job)
{
  {
    std::lock_guard lock(m_mutex);
    if (m_jobs.size() < m_max) {
      const auto now = std::chrono::steady_clock::now();
      // Due now: before every job waiting for a retry, after those already due.
      auto at =
          std::find_if(m_jobs.begin(), m_jobs.end(), [&](const Entry& e) { return e.due > now; });
      m_jobs.insert(at, Entry{std::move(what), std::move(job), 0, now});
      m_cv.notify_one();
      return true;
    }
  }
  log::line(log::Level::error, "", {{"outbox", "full"}, {"dropped", what}});
  return false;
}

std::size_t Outbox::pending() const
{
  std::lock_guard lock(m_mutex);
  return m_jobs.size();
}

void Outbox::run()
{
  std::unique_lock lock(m_mutex);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (!m_jobs.empty() && m_jobs.front().due <= now) {
      Entry e = std::move(m_jobs.front());
      m_jobs.pop_front();
      lock.unlock();
      bool done = false;
      try {
        done = e.job();
      } catch (const std::exception& ex) {
        log::line(log::Level::error, "",
                  {{"outbox", "error"}, {"job", e.what}, {"error", ex.what()}});
      }
      lock.lock();
      if (!done) {
        if (e.attempts < m_delays.size()) {
          e.due = std::chrono::steady_clock::now() + m_delays[e.attempts];
          ++e.attempts;
          log::line(log::Level::warning, "",
                    {{"outbox", "retry_later"},
                     {"job", e.what},
                     {"in_seconds", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                       m_delays[e.attempts - 1])
                                                       .count())}});
          auto at = std::find_if(m_jobs.begin(), m_jobs.end(),
                                 [&](const Entry& x) { return x.due > e.due; });
          m_jobs.insert(at, std::move(e));
        } else {
          log::line(log::Level::error, "", {{"outbox", "given_up"}, {"job", e.what}});
        }
      }
      continue;
    }
    if (m_stopping) {
      for (const auto& e : m_jobs) {
        log::line(log::Level::error, "", {{"outbox", "dropped_at_stop"}, {"job", e.what}});
      }
      m_jobs.clear();
      return;
    }
    if (m_jobs.empty()) {
      m_cv.wait(lock);
    } else {
      m_cv.wait_until(lock, m_jobs.front().due);
    }
  }
}

} // namespace pli::linkd
