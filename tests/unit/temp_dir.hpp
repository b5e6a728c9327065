// A temporary directory for a unit test, removed with everything in it at scope exit.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace pli::test {

struct TempDir
{
  std::filesystem::path path;
  TempDir()
  {
    std::string t = (std::filesystem::temp_directory_path() / "pli-test-XXXXXX").string();
    if (::mkdtemp(t.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path = t;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path); }
};

} // namespace pli::test
