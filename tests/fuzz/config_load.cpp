// The config loader on arbitrary YAML: a Config or an error with file and line, never a
// crash or an exception.
#include "core/config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto c = pli::config::load_from_string(text, "fuzz.yaml");
  if (!c.ok() && c.error().message.rfind("fuzz.yaml", 0) != 0) {
    __builtin_trap(); // every error names the file
  }
  return 0;
}
