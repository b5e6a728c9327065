// The pages of the store's memory map that a process maps by reading it, dropped from the
// process when it grows large (OpenOptions::write_mostly).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <sys/types.h>

namespace pli::store::detail {

class MapPages
{
public:
  struct Limits
  {
    // Resident size (anonymous and file-backed) above which the map's pages are dropped...
    std::size_t soft_limit = std::size_t{32} << 20;
    // ...when reads have mapped at least this much more of files since the last drop.
    std::size_t min_gain = std::size_t{2} << 20;
  };
  // `addr`/`length`: the map (nullptr: nothing to do).
  MapPages(void* addr, std::size_t length, Limits limits);
  ~MapPages();
  MapPages(const MapPages&) = delete;
  MapPages& operator=(const MapPages&) = delete;

  // Drops the map's pages from the process when the limits say so (/proc/self/statm: one
  // pread). Any thread, at any time; a concurrent caller skips the check.
  void check();
  // Drops the map's pages from the process (they stay in the page cache). Returns false
  // when there is no map.
  bool release();
  // Drops so far.
  unsigned long releases() const { return m_releases; }

private:
  // Resident and file-backed resident pages of the process (statm), false if unknown.
  bool resident(long& total, long& file);

  void* m_addr;
  std::size_t m_length;
  long m_soft_pages;
  long m_gain_pages;
  std::mutex m_mu;
  int m_statm = -1;
  pid_t m_statm_pid = 0; // /proc/self at open time: daemon() forks after the store opens
  long m_floor = -1;     // file-backed pages after the last drop
  unsigned m_checks = 0;
  std::atomic<unsigned long> m_releases{0};
};

} // namespace pli::store::detail
