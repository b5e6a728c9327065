// The subject-tag and X-Pli-Options parser: the input is "SUBJECT\nHEADER" (either may be
// empty). The subject it returns never grows and never keeps a recognised tag's value.
#include "core/milter/options.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string in(reinterpret_cast<const char*>(data), size);
  const auto nl = in.find('\n');
  const std::string subject = in.substr(0, nl);
  const std::string header = nl == std::string::npos ? "" : in.substr(nl + 1);
  const auto opts = pli::milter::parse_client_options(subject, header);
  if (opts.subject.size() > subject.size() + 1 ||
      (!opts.subject_changed && opts.subject != subject)) {
    __builtin_trap();
  }
  if (opts.reference && !pli::milter::valid_reference(*opts.reference)) {
    __builtin_trap();
  }
  return 0;
}
