#include "core/store/map_pages.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>

namespace pli::store::detail {

namespace {

long pages(std::size_t bytes)
{
  return static_cast<long>(bytes / static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
}

} // namespace

MapPages::MapPages(void* addr, std::size_t length, Limits limits)
    : m_addr(addr), m_length(length), m_soft_pages(pages(limits.soft_limit)),
      m_gain_pages(pages(limits.min_gain))
{
  if (m_addr != nullptr) {
    // The page cache holds large folios of the file (LMDB writes runs of pages): without
    // this, one read maps a whole 2 MB folio at once (FilePmdMapped in smaps).
    ::madvise(m_addr, m_length, MADV_NOHUGEPAGE);
  }
}

MapPages::~MapPages()
{
  if (m_statm >= 0) {
    ::close(m_statm);
  }
}

bool MapPages::resident(long& total, long& file)
{
  const pid_t pid = ::getpid();
  if (m_statm < 0 || m_statm_pid != pid) {
    if (m_statm >= 0) {
      ::close(m_statm);
    }
    m_statm = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    m_statm_pid = pid;
    if (m_statm < 0) {
      return false;
    }
  }
  char buf[128];
  const ssize_t n = ::pread(m_statm, buf, sizeof buf - 1, 0);
  if (n <= 0) {
    return false;
  }
  buf[n] = '\0';
  // size resident shared text lib data dt, in pages; shared = RssFile + RssShmem
  long size = 0;
  return std::sscanf(buf, "%ld %ld %ld", &size, &total, &file) == 3;
}

bool MapPages::release()
{
  if (m_addr == nullptr) {
    return false;
  }
  // The map is read-only (no MDB_WRITEMAP: LMDB writes with pwrite), so dropping its page
  // table entries loses nothing: a later read maps the same page-cache pages again, also
  // in a reader of another thread running meanwhile.
  ::madvise(m_addr, m_length, MADV_DONTNEED);
  ++m_releases;
  return true;
}

void MapPages::check()
{
  if (m_addr == nullptr) {
    return;
  }
  std::unique_lock lock(m_mu, std::try_to_lock);
  if (!lock.owns_lock()) {
    return;
  }
  long total = 0, file = 0;
  if (!resident(total, file)) {
    if (++m_checks % 8 == 0) { // no statm: every few checks
      release();
    }
    return;
  }
  if (m_floor < 0 || file < m_floor) {
    m_floor = file;
  }
  if (total > m_soft_pages && file - m_floor >= m_gain_pages && release()) {
    long after = 0;
    m_floor = resident(total, after) ? after : file;
  }
}

} // namespace pli::store::detail
