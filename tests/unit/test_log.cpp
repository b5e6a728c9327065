#include "core/log/log.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

using namespace pli;
using pli::test::TempDir;

namespace {

// Runs `fn` with standard error redirected to `file`; returns what was written there.
template <typename Fn> std::string with_stderr_in(const std::string& file, Fn fn)
{
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  ::close(fd);
  fn();
  ::dup2(saved, 2);
  ::close(saved);
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

TEST_CASE("log lines are copied to stderr in the foreground, but not into systemd's journal",
          "[log]")
{
  TempDir dir;
  const std::string file = (dir.path / "stderr").string();

  ::unsetenv("JOURNAL_STREAM");
  auto plain = with_stderr_in(file, [] {
    log::open("pli-test", true);
    log::line(log::Level::info, "ABC123", {{"status", "read"}, {"who", "a b"}});
  });
  CHECK(plain == "ABC123: status=read who=\"a b\"\n");

  // Under systemd, JOURNAL_STREAM names the stream stderr is: the journal gets the line
  // through syslog already.
  auto journal = with_stderr_in(file, [&] {
    struct stat st
    {
    };
    REQUIRE(::fstat(2, &st) == 0);
    std::string id = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    ::setenv("JOURNAL_STREAM", id.c_str(), 1);
    log::open("pli-test", true);
    log::line(log::Level::info, "ABC123", {{"status", "read"}});
  });
  CHECK(journal.empty());

  // A JOURNAL_STREAM inherited from elsewhere (stderr redirected since) changes nothing.
  ::setenv("JOURNAL_STREAM", "1:1", 1);
  auto other = with_stderr_in(file, [] {
    log::open("pli-test", true);
    log::message(log::Level::info, "started");
  });
  CHECK(other == "started\n");
  ::unsetenv("JOURNAL_STREAM");
  log::open("pli-test", false);
}
