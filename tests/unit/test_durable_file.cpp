// util/durable_file: the one writer of files that must survive a crash (keys, receipts,
// outbox records): temporary file, mode before data, fsync, rename, directory fsync; the
// temporary file removed on every failure.
#include "core/util/durable_file.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using pli::test::TempDir;
namespace util = pli::util;

namespace {

std::string read(const fs::path& p)
{
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> names(const fs::path& dir)
{
  std::vector<std::string> n;
  for (const auto& e : fs::directory_iterator(dir)) {
    n.push_back(e.path().filename().string());
  }
  std::sort(n.begin(), n.end());
  return n;
}

mode_t mode_of(const fs::path& p)
{
  struct stat sb;
  REQUIRE(::lstat(p.c_str(), &sb) == 0);
  return sb.st_mode & 07777;
}

// Runs `body` in a child process (to drop privileges or lower a limit there) and returns its
// exit status.
int in_child(const std::function<int()>& body)
{
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::_exit(body());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

} // namespace

TEST_CASE("durable write: the content, the mode whatever the umask, no temporary file left",
          "[durable]")
{
  TempDir dir;
  const fs::path target = dir.path / "f";
  const mode_t old_mask = ::umask(077);
  util::WriteOptions options;
  options.mode = 0644;
  auto st = util::write_file(target.string(), "one", options);
  ::umask(old_mask);
  REQUIRE(st.ok());
  CHECK(read(target) == "one");
  CHECK(mode_of(target) == 0644);
  CHECK(names(dir.path) == std::vector<std::string>{"f"});
  // Replaced as a whole; the default mode is 0600.
  REQUIRE(util::write_file(target.string(), "two").ok());
  CHECK(read(target) == "two");
  CHECK(mode_of(target) == 0600);
  CHECK(names(dir.path) == std::vector<std::string>{"f"});
}

TEST_CASE("durable write: a symlink at the target or the temporary name is never followed",
          "[durable]")
{
  TempDir dir;
  std::ofstream(dir.path / "outside") << "untouched";
  fs::create_symlink(dir.path / "outside", dir.path / "f");
  REQUIRE(util::write_file((dir.path / "f").string(), "new").ok());
  CHECK(fs::is_regular_file(fs::symlink_status(dir.path / "f")));
  CHECK(read(dir.path / "f") == "new");
  CHECK(read(dir.path / "outside") == "untouched");
}

TEST_CASE("durable write: before commit only the temporary file exists, with its mode and data; "
          "dropped, it is removed",
          "[durable]")
{
  TempDir dir;
  const fs::path target = dir.path / "f";
  std::ofstream(target) << "old";
  {
    util::WriteOptions options;
    options.mode = 0640;
    options.sync = util::Sync::none;
    auto file = util::write_temp(target.string(), "new", options);
    REQUIRE(file.ok());
    CHECK(file->path() == target.string());
    CHECK(file->temp_name().rfind(".f.", 0) == 0);
    CHECK(file->temp_name().size() > 7);
    CHECK(file->temp_name().substr(file->temp_name().size() - 4) == ".tmp");
    CHECK(read(dir.path / file->temp_name()) == "new");
    CHECK(mode_of(dir.path / file->temp_name()) == 0640);
    CHECK(read(target) == "old");
    CHECK(names(dir.path).size() == 2);
  } // not committed
  CHECK(names(dir.path) == std::vector<std::string>{"f"});
  CHECK(read(target) == "old");

  auto file = util::write_temp(target.string(), "new");
  REQUIRE(file.ok());
  util::PendingFile moved = std::move(file.value());
  REQUIRE(moved.commit().ok());
  CHECK(read(target) == "new");
  CHECK(names(dir.path) == std::vector<std::string>{"f"});
}

TEST_CASE("durable write: in a directory opened by the caller, then one fsync of it", "[durable]")
{
  TempDir dir;
  const int dirfd = ::open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(dirfd >= 0);
  util::WriteOptions options;
  options.sync = util::Sync::file;
  options.owner = util::FileOwner{::geteuid(), ::getegid()};
  CHECK(util::write_file_at(dirfd, dir.path.string(), "a", "A", options).ok());
  CHECK(util::write_file_at(dirfd, dir.path.string(), "b", "B", options).ok());
  CHECK(util::sync_dir_at(dirfd, dir.path.string()).ok());
  ::close(dirfd);
  CHECK(names(dir.path) == std::vector<std::string>{"a", "b"});
  CHECK(read(dir.path / "b") == "B");
  // A file written without a flush made durable later.
  options.sync = util::Sync::none;
  REQUIRE(util::write_file((dir.path / "c").string(), "C", options).ok());
  CHECK(util::sync_file_and_dir((dir.path / "c").string()).ok());
  auto missing = util::sync_file_and_dir((dir.path / "none").string());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == std::errc::no_such_file_or_directory);
  CHECK(util::sync_dir(dir.path.string(), util::FlushScope::file_system).ok());
}

TEST_CASE("durable write: failures are reported and leave no temporary file", "[durable]")
{
  TempDir dir;
  SECTION("a missing directory")
  {
    auto st = util::write_file((dir.path / "missing/f").string(), "x");
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == std::errc::no_such_file_or_directory);
    CHECK(st.error().message.find("missing") != std::string::npos);
  }
  SECTION("the rename fails (a non-empty directory at the target): the temporary file goes")
  {
    fs::create_directories(dir.path / "f" / "inside");
    auto st = util::write_file((dir.path / "f").string(), "x");
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message.find("cannot write " + (dir.path / "f").string()) == 0);
    CHECK(names(dir.path) == std::vector<std::string>{"f"});
  }
  SECTION("a read-only directory (as an unprivileged user)")
  {
    const fs::path ro = dir.path / "ro";
    fs::create_directory(ro);
    fs::permissions(dir.path,
                    fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                            fs::perms::group_exec | fs::perms::others_read |
                            fs::perms::others_exec);
    const int rc = in_child([&] {
      if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
        return 10;
      }
      auto st = util::write_file((ro / "f").string(), "x");
      if (st.ok()) {
        return 11;
      }
      if (st.error().code != std::errc::permission_denied) {
        return 12;
      }
      return st.error().message.find("cannot create a temporary file in " + ro.string()) == 0 ? 0
                                                                                              : 13;
    });
    CHECK(rc == 0);
    CHECK(fs::is_empty(ro));
  }
  SECTION("the data cannot be written (file size limit): the temporary file goes")
  {
    std::ofstream(dir.path / "f") << "old";
    const int rc = in_child([&] {
      ::signal(SIGXFSZ, SIG_IGN);
      struct rlimit limit = {4, 4};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) {
        return 10;
      }
      auto st = util::write_file((dir.path / "f").string(), "more than four bytes");
      if (st.ok()) {
        return 11;
      }
      return st.error().code == std::errc::file_too_large ? 0 : 12;
    });
    CHECK(rc == 0);
    CHECK(names(dir.path) == std::vector<std::string>{"f"});
    CHECK(read(dir.path / "f") == "old");
  }
}

TEST_CASE("dir_of", "[durable]")
{
  CHECK(util::dir_of("a/b/c") == "a/b");
  CHECK(util::dir_of("c") == ".");
  CHECK(util::dir_of("/c") == "/");
}
