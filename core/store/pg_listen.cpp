// SentListener (pg_listen.hpp).
#include "core/store/pg_listen.hpp"

#include "core/store/pg_store_impl.hpp"
#include "core/store/pq.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace pli::store::detail {

namespace {

PgOptions listener_options(PgOptions options)
{
  options.application_name += " (listener)";
  options.pool = 1;
  return options;
}

} // namespace

SentListener::SentListener(PgOptions options)
    : m_options(listener_options(std::move(options))),
      m_stop_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
  m_thread = std::thread([this] { run(); });
}

SentListener::~SentListener()
{
  const std::uint64_t one = 1;
  if (m_stop_fd >= 0 && ::write(m_stop_fd, &one, sizeof one) < 0) {
    // Nothing else to do: the thread also stops at its next wake-up.
  }
  if (m_thread.joinable()) {
    m_thread.join();
  }
  if (m_stop_fd >= 0) {
    ::close(m_stop_fd);
  }
}

std::uint64_t SentListener::generation()
{
  std::lock_guard lock(m_mu);
  return m_generation;
}

bool SentListener::listening(std::chrono::steady_clock::time_point deadline)
{
  std::unique_lock lock(m_mu);
  return m_cv.wait_until(lock, deadline, [&] { return m_listening; });
}

bool SentListener::wait(std::uint64_t seen, std::chrono::steady_clock::time_point deadline)
{
  std::unique_lock lock(m_mu);
  return m_cv.wait_until(lock, deadline, [&] { return m_generation != seen; });
}

void SentListener::bump(bool listening)
{
  {
    std::lock_guard lock(m_mu);
    ++m_generation;
    m_listening = listening;
  }
  m_cv.notify_all();
}

void SentListener::run()
{
  // Waits on the stop eventfd and, when connected, on the connection's socket; -1: forever.
  // True when asked to stop.
  auto stop_requested = [this](int socket, int timeout_ms) {
    pollfd fds[2] = {{m_stop_fd, POLLIN, 0}, {socket, POLLIN, 0}};
    const int n = ::poll(fds, socket >= 0 ? 2 : 1, timeout_ms);
    return n > 0 && (fds[0].revents & POLLIN) != 0;
  };
  for (;;) {
    auto conn = pq::connect(m_options);
    if (conn && (*conn)->simple(std::string("LISTEN ") + k_channel, "listen")) {
      // Listening: waiters re-read (a commit may have come while we were not).
      bump(true);
      pq::Conn& c = **conn;
      for (;;) {
        if (stop_requested(PQsocket(c.get()), -1)) {
          return;
        }
        if (PQconsumeInput(c.get()) == 0) {
          break; // the connection is lost
        }
        bool woke = false;
        while (PGnotify* n = PQnotifies(c.get())) {
          PQfreemem(n);
          woke = true;
        }
        if (woke) {
          bump(true);
        }
      }
      bump(false);
    }
    // The server cannot be reached: waiters keep their own bound; try again in a second.
    if (stop_requested(-1, 1000)) {
      return;
    }
  }
}

Result<pb::Delivery> PgStore::wait_for_sent(const std::string& id, std::chrono::milliseconds max)
{
  const auto deadline = std::chrono::steady_clock::now() + max;
  SentListener* listener = nullptr;
  {
    std::lock_guard lock(m_listener_mu);
    if (!m_listener) {
      m_listener = std::make_unique<SentListener>(m_pool.options());
    }
    listener = m_listener.get();
  }
  // Listening before the first read: a commit after it wakes us.
  listener->listening(deadline);
  for (;;) {
    const std::uint64_t seen = listener->generation();
    auto d = get_delivery(id);
    if (!d || d->sent_at() != 0) {
      return d;
    }
    if (!listener->wait(seen, deadline)) {
      return d; // not sent within `max`
    }
  }
}

} // namespace pli::store::detail
