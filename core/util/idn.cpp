// Comparable forms of internationalised domain names (see idn.hpp).
#include "core/util/idn.hpp"

#include "core/util/encoding.hpp"

#include <idn2.h>

#include <cstdlib>
#include <memory>

namespace pli::util {

namespace {

// Owns a string that libidn2 allocated.
struct Idn2Free
{
  void operator()(char* p) const noexcept { idn2_free(p); }
};

} // namespace

std::string domain_key(std::string_view domain)
{
  const std::string text(domain);
  if (text.empty() || text.front() == '[') {
    return ascii_lower(text);
  }
  for (int flags : {IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL, IDN2_NFC_INPUT | IDN2_TRANSITIONAL}) {
    char* raw = nullptr;
    const int rc = idn2_to_ascii_8z(text.c_str(), &raw, flags);
    const std::unique_ptr<char, Idn2Free> out(raw);
    if (rc == IDN2_OK && out != nullptr) {
      return ascii_lower(out.get());
    }
  }
  return ascii_lower(text);
}

} // namespace pli::util
