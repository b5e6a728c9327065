#include "core/receipt/font.hpp"

#include <algorithm>

namespace pli::receipt {

namespace {

bool covered(char32_t c)
{
  const auto ranges = subset_font_ranges();
  auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                             [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != ranges.begin() && c <= std::prev(it)->last;
}

} // namespace

void scan_text(std::string_view s, TextScan& scan)
{
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
    char32_t c = b;
    if (n > 1 && i + n <= s.size()) {
      c = b & (0x7F >> n);
      for (std::size_t k = 1; k < n; ++k) {
        const auto t = static_cast<unsigned char>(s[i + k]);
        if ((t & 0xC0) != 0x80) {
          n = 0;
          break;
        }
        c = (c << 6) | (t & 0x3F);
      }
    } else if (n > 1) {
      n = 0;
    }
    if (n == 0) { // invalid UTF-8: skip the byte
      scan.subset_covers = false;
      ++i;
      continue;
    }
    i += n;
    if (c == '\n') {
      continue;
    }
    scan.max_code_point = std::max(scan.max_code_point, c);
    if (scan.subset_covers && !covered(c)) {
      scan.subset_covers = false;
    }
  }
}

bool subset_covers(std::string_view s)
{
  TextScan scan;
  scan_text(s, scan);
  return scan.subset_covers;
}

} // namespace pli::receipt
