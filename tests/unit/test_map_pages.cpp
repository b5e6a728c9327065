// MapPages (OpenOptions::write_mostly): the pages a process maps by reading a file are
// dropped once its resident size passes the soft limit, and only then.
#include "core/store/map_pages.hpp"

#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <string>

using pli::store::detail::MapPages;

namespace {

// The process's file-backed resident pages (statm).
long file_pages()
{
  FILE* f = std::fopen("/proc/self/statm", "r");
  REQUIRE(f != nullptr);
  long size = 0, resident = 0, shared = 0;
  REQUIRE(std::fscanf(f, "%ld %ld %ld", &size, &resident, &shared) == 3);
  std::fclose(f);
  return shared;
}

struct MappedFile
{
  explicit MappedFile(const std::string& path, std::size_t length) : length(length)
  {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    const std::string page(4096, 'x');
    for (std::size_t off = 0; off < length; off += page.size()) {
      REQUIRE(::write(fd, page.data(), page.size()) == static_cast<ssize_t>(page.size()));
    }
    addr = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(addr != MAP_FAILED);
  }
  ~MappedFile()
  {
    ::munmap(addr, length);
    ::close(fd);
  }
  // Reads one byte of every page: maps the whole file (it is in the page cache).
  long touch() const
  {
    long sum = 0;
    for (std::size_t off = 0; off < length; off += 4096) {
      sum += static_cast<const volatile char*>(addr)[off];
    }
    return sum;
  }
  std::size_t length;
  int fd = -1;
  void* addr = nullptr;
};

} // namespace

TEST_CASE("map pages are dropped above the soft limit, kept below it", "[store][map_pages]")
{
  pli::test::TempDir dir;
  constexpr std::size_t mb = std::size_t{1} << 20;
  MappedFile file((dir.path / "data").string(), 16 * mb);

  SECTION("above the soft limit")
  {
    MapPages pages(file.addr, file.length, MapPages::Limits{0, 2 * mb});
    pages.check(); // sets the floor
    REQUIRE(file.touch() != 0);
    const long mapped = file_pages();
    pages.check();
    CHECK(pages.releases() == 1);
    CHECK(mapped - file_pages() >= static_cast<long>(15 * mb / 4096));
    pages.check(); // nothing new mapped since: kept
    CHECK(pages.releases() == 1);
    REQUIRE(file.touch() != 0); // the same bytes again
    pages.check();
    CHECK(pages.releases() == 2);
  }
  SECTION("below the soft limit")
  {
    MapPages pages(file.addr, file.length, MapPages::Limits{std::size_t{1} << 40, 2 * mb});
    pages.check();
    REQUIRE(file.touch() != 0);
    const long mapped = file_pages();
    pages.check();
    CHECK(pages.releases() == 0);
    CHECK(file_pages() >= mapped);
  }
  SECTION("less than the minimum gain mapped")
  {
    MapPages pages(file.addr, file.length, MapPages::Limits{0, 64 * mb});
    pages.check();
    REQUIRE(file.touch() != 0);
    pages.check();
    CHECK(pages.releases() == 0);
  }
}

TEST_CASE("no map, nothing to drop", "[store][map_pages]")
{
  MapPages pages(nullptr, 0, MapPages::Limits{0, 0});
  pages.check();
  CHECK_FALSE(pages.release());
  CHECK(pages.releases() == 0);
}
