// The bounce parser (RFC 3464 reports and plain-text bounces) on arbitrary bytes.
#include "core/dsn/dsn.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  if (auto report = pli::dsn::parse_report(raw)) {
    for (const auto& r : report->recipients) {
      (void)pli::dsn::event_kind_for(r.action);
    }
  }
  return 0;
}
