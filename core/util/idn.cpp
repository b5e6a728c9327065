// Comparable forms of internationalised domain names (see idn.hpp).
#include "core/util/idn.hpp"

#include "core/util/encoding.hpp"

#include <idn2.h>

#include <cstdlib>

namespace pli::util {

std::string domain_key(std::string_view domain)
{
  const std::string text(domain);
  if (text.empty() || text.front() == '[') {
    return ascii_lower(text);
  }
  for (int flags : {IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL, IDN2_NFC_INPUT | IDN2_TRANSITIONAL}) {
    char* out = nullptr;
    if (idn2_to_ascii_8z(text.c_str(), &out, flags) == IDN2_OK && out != nullptr) {
      std::string key = ascii_lower(out);
      idn2_free(out);
      return key;
    }
    idn2_free(out);
  }
  return ascii_lower(text);
}

} // namespace pli::util
