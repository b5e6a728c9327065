// PgStore's wake-up for Store::wait_for_sent: one connection per process LISTENs on the
// channel `pli_sent`, which every host's append of a `sent` event NOTIFYs in its
// transaction (delivered at its commit). A notification is only a wake-up: waiters re-read
// the delivery's row after each one, and after each reconnection of the listener (a
// notification sent while it was disconnected is not replayed). Private to core/store.
#pragma once

#include "core/store/postgresql.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace pli::store::detail {

class SentListener
{
public:
  explicit SentListener(PgOptions options);
  ~SentListener(); // stops and joins the thread
  SentListener(const SentListener&) = delete;
  SentListener& operator=(const SentListener&) = delete;

  // Wake-ups so far: notifications received and reconnections.
  std::uint64_t generation();
  // Waits until the listener is listening (true), or `deadline` (false).
  bool listening(std::chrono::steady_clock::time_point deadline);
  // Waits until generation() differs from `seen` (true), or `deadline` (false).
  bool wait(std::uint64_t seen, std::chrono::steady_clock::time_point deadline);

  static constexpr const char* k_channel = "pli_sent";

private:
  void run();
  void bump(bool listening);

  const PgOptions m_options;
  int m_stop_fd = -1; // an eventfd: written by the destructor
  std::mutex m_mu;
  std::condition_variable m_cv;
  std::uint64_t m_generation = 0;
  bool m_listening = false;
  std::thread m_thread; // last: started once the members above exist
};

} // namespace pli::store::detail
