// UTF-8 repair and control stripping, trimming, folding, display width (see text.hpp).
#include "core/util/text.hpp"

#include "core/util/gobject_ptr.hpp"

#include <glib.h>

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

std::string_view trim_start(std::string_view s, std::string_view chars)
{
  const auto first = s.find_first_not_of(chars);
  return first == std::string_view::npos ? std::string_view{} : s.substr(first);
}

std::string_view trim_end(std::string_view s, std::string_view chars)
{
  const auto last = s.find_last_not_of(chars);
  return last == std::string_view::npos ? std::string_view{} : s.substr(0, last + 1);
}

std::string_view trim(std::string_view s, std::string_view chars)
{
  return trim_end(trim_start(s, chars), chars);
}

std::string fold(const std::string& text)
{
  if (!g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr)) {
    std::string ascii;
    for (char c : text) {
      // NUL too: g_utf8_validate refuses it, and keeping it recursed without end.
      ascii.push_back(c != '\0' && static_cast<unsigned char>(c) < 0x80 ? c : ' ');
    }
    return fold(ascii);
  }
  const GCharPtr nfkd(
      g_utf8_normalize(text.data(), static_cast<gssize>(text.size()), G_NORMALIZE_NFKD));
  if (!nfkd) {
    return {};
  }
  std::string out;
  out.reserve(text.size());
  for (const gchar* p = nfkd.get(); *p != '\0'; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (g_unichar_ismark(c)) {
      continue;
    }
    c = g_unichar_tolower(c);
    switch (c) {
    case 0x153: // œ
      out += "oe";
      continue;
    case 0xE6: // æ
      out += "ae";
      continue;
    case 0xDF: // ß
      out += "ss";
      continue;
    case 0x2019: // ’
      out += '\'';
      continue;
    default:
      break;
    }
    char buf[6];
    const int n = g_unichar_to_utf8(c, buf);
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string fold_case(std::string_view text)
{
  const GCharPtr folded(g_utf8_casefold(text.data(), static_cast<gssize>(text.size())));
  return folded ? std::string(folded.get()) : std::string(text);
}

namespace {

std::size_t columns_of(gunichar c)
{
  if (g_unichar_iszerowidth(c)) {
    return 0;
  }
  return g_unichar_iswide(c) ? 2 : 1;
}

} // namespace

std::size_t display_width(std::string_view text)
{
  if (!g_utf8_validate_len(text.data(), text.size(), nullptr)) {
    std::size_t n = 0;
    for (unsigned char c : text) {
      n += (c & 0xC0) != 0x80 ? 1 : 0;
    }
    return n;
  }
  const GCharPtr nfc(
      g_utf8_normalize(text.data(), static_cast<gssize>(text.size()), G_NORMALIZE_NFC));
  if (!nfc) {
    return 0;
  }
  std::size_t n = 0;
  for (const gchar* p = nfc.get(); *p != '\0'; p = g_utf8_next_char(p)) {
    n += columns_of(g_utf8_get_char(p));
  }
  return n;
}

std::string_view prefix_of_width(std::string_view text, std::size_t columns)
{
  std::size_t n = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t consumed = 1;
    const std::size_t len = sequence_at(text, i, consumed);
    const std::size_t step = len == 0 ? consumed : len;
    const std::size_t w =
        len == 0 ? 1
                 : columns_of(g_utf8_get_char_validated(text.data() + i, static_cast<gssize>(len)));
    if (n + w > columns) {
      break;
    }
    n += w;
    i += step;
  }
  return text.substr(0, i);
}

} // namespace pli::util
