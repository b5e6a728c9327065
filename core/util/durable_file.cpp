#include "core/util/durable_file.hpp"

#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace pli::util {

namespace {

Error errno_error(const std::string& what, int e)
{
  return Error{std::error_code(e, std::generic_category()),
               fmt::format("{}: {}", what, std::strerror(e))};
}

std::string join(const std::string& dir, const std::string& name)
{
  return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string name_of(const std::string& path)
{
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

} // namespace

std::string dir_of(const std::string& path)
{
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

PendingFile::PendingFile(int dirfd, bool own_dirfd, std::string dir, std::string name,
                         std::string temp, Sync sync)
    : m_dirfd(dirfd), m_own_dirfd(own_dirfd), m_dir(std::move(dir)), m_name(std::move(name)),
      m_path(join(m_dir, m_name)), m_temp(std::move(temp)), m_sync(sync)
{
}

PendingFile::PendingFile(PendingFile&& other) noexcept
    : m_dirfd(std::exchange(other.m_dirfd, -1)),
      m_own_dirfd(std::exchange(other.m_own_dirfd, false)), m_dir(std::move(other.m_dir)),
      m_name(std::move(other.m_name)), m_path(std::move(other.m_path)),
      m_temp(std::move(other.m_temp)), m_sync(other.m_sync),
      m_done(std::exchange(other.m_done, true))
{
}

PendingFile& PendingFile::operator=(PendingFile&& other) noexcept
{
  if (this != &other) {
    release();
    m_dirfd = std::exchange(other.m_dirfd, -1);
    m_own_dirfd = std::exchange(other.m_own_dirfd, false);
    m_dir = std::move(other.m_dir);
    m_name = std::move(other.m_name);
    m_path = std::move(other.m_path);
    m_temp = std::move(other.m_temp);
    m_sync = other.m_sync;
    m_done = std::exchange(other.m_done, true);
  }
  return *this;
}

PendingFile::~PendingFile()
{
  release();
}

void PendingFile::release()
{
  if (!m_done && m_dirfd >= 0) {
    ::unlinkat(m_dirfd, m_temp.c_str(), 0);
  }
  m_done = true;
  if (m_own_dirfd && m_dirfd >= 0) {
    ::close(m_dirfd);
  }
  m_dirfd = -1;
  m_own_dirfd = false;
}

Status PendingFile::commit()
{
  PLI_ASSERT(!m_done && m_dirfd >= 0);
  if (::renameat(m_dirfd, m_temp.c_str(), m_dirfd, m_name.c_str()) != 0) {
    const int e = errno;
    release();
    return errno_error("cannot write " + m_path, e);
  }
  m_done = true;
  Status st = m_sync == Sync::file_and_dir ? sync_dir_at(m_dirfd, m_dir) : ok_status();
  release();
  return st;
}

Result<PendingFile> write_temp_at(int dirfd, const std::string& dir, const std::string& name,
                                  std::string_view data, const WriteOptions& options)
{
  const std::string path = join(dir, name);
  std::string temp;
  int fd = -1;
  int e = 0;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    temp = "." + name + "." + hex_encode(random_bytes(6)) + ".tmp";
    fd = ::openat(dirfd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    e = errno;
    if (fd < 0 && e != EEXIST) {
      break;
    }
  }
  if (fd < 0) {
    return errno_error("cannot create a temporary file in " + dir, e);
  }
  auto fail = [&](const std::string& what) {
    const int saved = errno;
    ::close(fd);
    ::unlinkat(dirfd, temp.c_str(), 0);
    return errno_error(what, saved);
  };
  if (options.owner && ::fchown(fd, options.owner->uid, options.owner->gid) != 0) {
    return fail("cannot give " + path + " to its owner");
  }
  if (::fchmod(fd, options.mode) != 0) {
    return fail("cannot set the mode of " + path);
  }
  for (std::size_t done = 0; done < data.size();) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      if (n == 0) {
        errno = EIO;
      }
      return fail("cannot write " + path);
    }
    done += static_cast<std::size_t>(n);
  }
  if (options.sync != Sync::none && ::fsync(fd) != 0) {
    return fail("cannot write " + path);
  }
  if (::close(fd) != 0) {
    const int saved = errno;
    ::unlinkat(dirfd, temp.c_str(), 0);
    return errno_error("cannot write " + path, saved);
  }
  return PendingFile(dirfd, false, dir, name, std::move(temp), options.sync);
}

Result<PendingFile> write_temp(const std::string& path, std::string_view data,
                               const WriteOptions& options)
{
  const std::string dir = dir_of(path);
  const int dirfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    return errno_error("cannot open the directory " + dir, errno);
  }
  auto file = write_temp_at(dirfd, dir, name_of(path), data, options);
  if (!file) {
    ::close(dirfd);
    return file.error();
  }
  file->m_own_dirfd = true;
  return file;
}

Status write_file_at(int dirfd, const std::string& dir, const std::string& name,
                     std::string_view data, const WriteOptions& options)
{
  auto file = write_temp_at(dirfd, dir, name, data, options);
  if (!file) {
    return file.error();
  }
  return file->commit();
}

Status write_file(const std::string& path, std::string_view data, const WriteOptions& options)
{
  auto file = write_temp(path, data, options);
  if (!file) {
    return file.error();
  }
  return file->commit();
}

Status sync_dir_at(int dirfd, const std::string& dir)
{
  if (::fsync(dirfd) != 0) {
    return errno_error("cannot sync " + dir, errno);
  }
  return ok_status();
}

Status sync_dir(const std::string& dir, FlushScope scope)
{
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return errno_error("cannot sync " + dir, errno);
  }
  const bool ok = (scope == FlushScope::file_system ? ::syncfs(fd) : ::fsync(fd)) == 0;
  const int e = errno;
  ::close(fd);
  if (!ok) {
    return errno_error("cannot sync " + dir, e);
  }
  return ok_status();
}

Status sync_file_and_dir(const std::string& path)
{
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int e = errno;
    if (fd >= 0) {
      ::close(fd);
    }
    return errno_error("cannot sync " + path, e);
  }
  ::close(fd);
  return sync_dir(dir_of(path));
}

} // namespace pli::util
