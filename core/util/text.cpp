// UTF-8 repair and control stripping (see text.hpp).
#include "core/util/text.hpp"

#include <cstdint>
#include <cstring>

namespace pli::util {

namespace {

// The length of the well-formed sequence at `i`, or 0 with `consumed` set to the bytes of
// its maximal subpart (at least 1): the bytes that one U+FFFD replaces.
std::size_t sequence_at(std::string_view s, std::size_t i, std::size_t& consumed)
{
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) {
    return 1;
  }
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    consumed = 1;
    return 0;
  }
  for (std::size_t k = 1; k < len; ++k) {
    if (i + k >= s.size()) {
      consumed = s.size() - i; // cut short by the end: one U+FFFD
      return 0;
    }
    const unsigned char n = b(i + k);
    const bool ok = k == 1 ? n >= lo && n <= hi : n >= 0x80 && n <= 0xbf;
    if (!ok) {
      consumed = k; // the byte that does not fit starts anew
      return 0;
    }
  }
  return len;
}

constexpr std::string_view k_replacement = "\xef\xbf\xbd";

// U+0000-U+001F, U+007F and U+0080-U+009F (C1: 0xC2 0x80-0x9F in UTF-8).
template <typename Keep> std::string without_controls(std::string text, Keep keep)
{
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      out.push_back(keep(c) ? static_cast<char>(c) : ' ');
    } else if (c == 0xc2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      out.push_back(' ');
      ++i;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

} // namespace

bool is_utf8(std::string_view bytes)
{
  std::size_t consumed = 0;
  for (std::size_t i = 0; i < bytes.size();) {
    // ASCII eight bytes at a time (a message's bodies are mostly ASCII).
    while (i + 8 <= bytes.size()) {
      std::uint64_t word = 0;
      std::memcpy(&word, bytes.data() + i, 8);
      if ((word & 0x8080808080808080ULL) != 0) {
        break;
      }
      i += 8;
    }
    if (i >= bytes.size()) {
      break;
    }
    const std::size_t n = sequence_at(bytes, i, consumed);
    if (n == 0) {
      return false;
    }
    i += n;
  }
  return true;
}

std::string to_utf8(std::string_view bytes)
{
  if (is_utf8(bytes)) {
    return std::string(bytes);
  }
  std::string out;
  out.reserve(bytes.size() + 8);
  for (std::size_t i = 0; i < bytes.size();) {
    std::size_t consumed = 0;
    const std::size_t n = sequence_at(bytes, i, consumed);
    if (n == 0) {
      out += k_replacement;
      i += consumed;
    } else {
      out.append(bytes.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string clean_line(std::string_view bytes, std::size_t max_bytes)
{
  std::string out = without_controls(to_utf8(bytes), [](unsigned char) { return false; });
  if (out.size() > max_bytes) {
    std::size_t end = max_bytes;
    while (end > 0 && (static_cast<unsigned char>(out[end]) & 0xc0) == 0x80) {
      --end; // not in the middle of a character
    }
    out.resize(end);
  }
  return out;
}

std::string clean_text(std::string_view bytes)
{
  return without_controls(to_utf8(bytes),
                          [](unsigned char c) { return c == '\t' || c == '\n' || c == '\r'; });
}

} // namespace pli::util
