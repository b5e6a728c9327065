// Files written so that a crash leaves either the old content or the new one, never a mix:
// the data goes to a new temporary file in the target's directory, is flushed (fsync), and
// the temporary file is renamed over the target (rename(2) is atomic within a directory);
// then the directory itself is flushed, so that the new name survives a crash too.
//
// The temporary file is created with O_EXCL and O_NOFOLLOW (a file or symlink planted under
// its name is never opened), gets its mode (and, when asked, its owner) on the descriptor
// before any data is written, whatever the umask, and is removed on every failure. The
// rename replaces whatever is at the target, a symlink included, without following it.
//
// The one writer of the keys (receipt/keys.cpp) and the receipts (receipt/pdf.cpp).
#pragma once

#include "core/util/result.hpp"

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace pli::util {

// What is flushed when a file is written.
enum class Sync
{
  file_and_dir, // the data before the rename, the directory after it (durable on return)
  file,         // the data only: the caller flushes the directory once for several files
  none          // nothing: the caller flushes later (sync_file_and_dir) or for many at once
};

struct FileOwner
{
  uid_t uid = 0;
  gid_t gid = 0;
};

struct WriteOptions
{
  mode_t mode = 0600;             // set before the data is written, whatever the umask
  std::optional<FileOwner> owner; // fchown(2) before the data, when set (needs the right)
  Sync sync = Sync::file_and_dir;
};

// A temporary file holding the new content of a target, not yet renamed: commit() puts it
// in place; the destructor removes it when it was not committed. Move-only.
class PendingFile
{
public:
  PendingFile(PendingFile&& other) noexcept;
  PendingFile& operator=(PendingFile&& other) noexcept;
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  ~PendingFile();

  // Renames the temporary file over the target, then (Sync::file_and_dir) flushes the
  // directory. Errors (code: the errno, std::generic_category()): the rename or the directory's
  // fsync failed; after a failed rename the temporary file is removed.
  [[nodiscard]] Status commit();
  // The target's path ("DIR/NAME").
  const std::string& path() const { return m_path; }
  // The temporary file's name in the target's directory (".NAME.<random>.tmp").
  const std::string& temp_name() const { return m_temp; }

private:
  friend Result<PendingFile> write_temp_at(int dirfd, const std::string& dir,
                                           const std::string& name, std::string_view data,
                                           const WriteOptions& options);
  friend Result<PendingFile> write_temp(const std::string& path, std::string_view data,
                                        const WriteOptions& options);
  PendingFile(int dirfd, bool own_dirfd, std::string dir, std::string name, std::string temp,
              Sync sync);
  void release();

  int m_dirfd = -1;
  bool m_own_dirfd = false;
  std::string m_dir;
  std::string m_name;
  std::string m_path;
  std::string m_temp;
  Sync m_sync = Sync::file_and_dir;
  bool m_done = false;
};

// Writes `data` to a new temporary file named ".NAME.<random>.tmp" in the directory open
// as `dirfd` (`dir` is its name, for messages and path()), with options.mode and
// options.owner, flushed unless options.sync is Sync::none. Returns the file, to commit.
// Errors (code: the errno, std::generic_category(); the temporary file removed): "cannot create a
// temporary file in DIR: reason", "cannot set the mode of DIR/NAME: reason", "cannot give DIR/NAME
// to its owner: reason", "cannot write DIR/NAME: reason".
Result<PendingFile> write_temp_at(int dirfd, const std::string& dir, const std::string& name,
                                  std::string_view data, const WriteOptions& options = {});
// The same in the directory of `path` (the part before its last '/', "." without one).
// Errors: those of write_temp_at, and "cannot open the directory DIR: reason".
Result<PendingFile> write_temp(const std::string& path, std::string_view data,
                               const WriteOptions& options = {});

// write_temp_at then commit: the target holds `data` on return (durable with
// Sync::file_and_dir). Errors: those of write_temp_at and commit; the target is unchanged.
Status write_file_at(int dirfd, const std::string& dir, const std::string& name,
                     std::string_view data, const WriteOptions& options = {});
// write_temp then commit. Errors: those of write_temp and commit.
Status write_file(const std::string& path, std::string_view data, const WriteOptions& options = {});

// fsync(2) of the directory open as `dirfd` (`dir` for the message): makes the renames
// done in it durable. Errors (code: the errno, std::generic_category()): "cannot sync DIR: reason".
Status sync_dir_at(int dirfd, const std::string& dir);
// The same for the directory `dir`, or (FlushScope::file_system) syncfs(2) of the file
// system holding it: every file written there flushed at once.
enum class FlushScope
{
  directory,
  file_system
};
Status sync_dir(const std::string& dir, FlushScope scope = FlushScope::directory);
// fsync(2) of the file `path`, then of its directory: a file written with Sync::none made
// durable later. Errors (code: the errno, std::generic_category()): "cannot sync PATH: reason"
// (file or directory).
Status sync_file_and_dir(const std::string& path);

// The directory part of `path`: before its last '/', "." without one, "/" for "/NAME".
std::string dir_of(const std::string& path);

} // namespace pli::util
