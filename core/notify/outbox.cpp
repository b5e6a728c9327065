#include "core/notify/outbox.hpp"

#include "core/log/log.hpp"
#include "core/util/durable_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>

namespace pli::notify {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_magic = "pli-outbox 1\n";

// Makes a record's creation (data, then its name in the directory) durable.
void sync_record(const fs::path& file)
{
  if (auto st = util::sync_file_and_dir(file.string()); !st) {
    log::line(log::Level::error, "",
              {{"outbox", "sync_failed"}, {"file", file.string()}, {"error", st.error().message}});
  }
}

void remove_record(const fs::path& file)
{
  std::error_code ec;
  if (!fs::remove(file, ec) && ec) {
    log::line(log::Level::error, "",
              {{"outbox", "remove_failed"}, {"file", file.string()}, {"error", ec.message()}});
  }
}

} // namespace

Outbox::Delays Outbox::default_delays()
{
  return {30s, 2min, 10min, 30min, 1h};
}

Outbox::Outbox(Delays retry_delays, std::size_t max_jobs, std::optional<Persistence> persistence)
    : m_delays(std::move(retry_delays)), m_max(max_jobs), m_persist(std::move(persistence)),
      m_thread([this] { run(); })
{
  if (m_persist) {
    revive_records();
  }
}

std::optional<fs::path> Outbox::write_record(const std::string& what, const Record& r)
{
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(m_mutex);
    seq = ++m_seq;
  }
  // Named by creation time, so that a restart runs them in order.
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  char name[96];
  std::snprintf(name, sizeof name, "%020lld-%d-%llu", static_cast<long long>(ns),
                static_cast<int>(::getpid()), static_cast<unsigned long long>(seq));
  const fs::path file = m_persist->dir / (std::string(name) + ".job");
  std::string bytes(k_magic);
  bytes += r.kind + "\n" + what + "\n" + r.payload;
  // Not flushed here: the record is made durable (sync_record) only when its job does not
  // succeed at once. A temporary file left by a crash ends in ".tmp", removed at restart.
  util::WriteOptions options;
  options.mode = 0600;
  options.sync = util::Sync::none;
  if (auto st = util::write_file(file.string(), bytes, options); !st) {
    log::line(log::Level::error, "",
              {{"outbox", "write_failed"},
               {"job", what},
               {"file", file.string()},
               {"error", st.error().message}});
    return std::nullopt;
  }
  return file;
}

void Outbox::revive_records()
{
  std::error_code ec;
  fs::create_directories(m_persist->dir, ec);
  std::vector<fs::path> files;
  for (fs::directory_iterator it(m_persist->dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto ext = it->path().extension();
    if (ext == ".job") {
      files.push_back(it->path());
    } else if (ext == ".tmp") {
      remove_record(it->path()); // cut short while being written: its push() failed
    }
  }
  if (ec) {
    log::line(
        log::Level::error, "",
        {{"outbox", "dir_unreadable"}, {"dir", m_persist->dir.string()}, {"error", ec.message()}});
    return;
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Record r;
    std::string what;
    bool ok = bytes.compare(0, k_magic.size(), k_magic) == 0;
    if (ok) {
      const auto kind_end = bytes.find('\n', k_magic.size());
      const auto what_end =
          kind_end == std::string::npos ? std::string::npos : bytes.find('\n', kind_end + 1);
      ok = what_end != std::string::npos;
      if (ok) {
        r.kind = bytes.substr(k_magic.size(), kind_end - k_magic.size());
        what = bytes.substr(kind_end + 1, what_end - kind_end - 1);
        r.payload = bytes.substr(what_end + 1);
      }
    }
    Job job = ok ? m_persist->revive(r) : Job{};
    if (!job) {
      log::line(log::Level::error, "",
                {{"outbox", "record_unusable"}, {"file", file.string()}, {"kind", r.kind}});
      remove_record(file);
      continue;
    }
    log::line(log::Level::info, "", {{"outbox", "revived"}, {"job", what}});
    std::lock_guard lock(m_mutex);
    queue_due_now(Entry{std::move(what), std::move(job), 0, {}, file});
  }
}

void Outbox::queue_due_now(Entry e)
{
  const auto now = std::chrono::steady_clock::now();
  e.due = now;
  // Due now: before every job waiting for a retry, after those already due.
  auto at = std::find_if(m_jobs.begin(), m_jobs.end(), [&](const Entry& x) { return x.due > now; });
  m_jobs.insert(at, std::move(e));
  m_cv.notify_one();
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

bool Outbox::push(std::string what, Job job, std::optional<Record> record)
{
  {
    std::lock_guard lock(m_mutex);
    if (m_jobs.size() >= m_max) {
      log::line(log::Level::error, "", {{"outbox", "full"}, {"dropped", what}});
      return false;
    }
  }
  fs::path file;
  if (record && m_persist) {
    auto written = write_record(what, *record);
    if (!written) {
      return false;
    }
    file = std::move(*written);
  }
  std::lock_guard lock(m_mutex);
  queue_due_now(Entry{std::move(what), std::move(job), 0, {}, std::move(file)});
  return true;
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
      if (!e.file.empty() && (done || e.attempts >= m_delays.size())) {
        remove_record(e.file);
      } else if (!e.file.empty() && e.attempts == 0) {
        sync_record(e.file); // it waits: it must outlive a crash
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
        log::line(
            e.file.empty() ? log::Level::error : log::Level::info, "",
            {{"outbox", e.file.empty() ? "dropped_at_stop" : "kept_for_restart"}, {"job", e.what}});
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

} // namespace pli::notify
