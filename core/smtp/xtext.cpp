// RFC 3461 xtext and RFC 6533 utf-8-addr-xtext (see xtext.hpp).
#include "core/smtp/xtext.hpp"

#include "core/util/encoding.hpp"

#include <fmt/format.h>

#include <strings.h>

#include <cstdint>

namespace pli::smtp {

namespace {

// RFC 6533's QCHAR: printable ASCII except "\", "+" and "=".
bool is_qchar(unsigned char c)
{
  return c >= 0x21 && c <= 0x7e && c != '\\' && c != '+' && c != '=';
}

void append_utf8(std::string& out, std::uint32_t cp)
{
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// The code point starting at text[i] and its length in bytes; an invalid sequence is one
// byte taken as U+0080..U+00FF.
std::pair<std::uint32_t, std::size_t> next_code_point(std::string_view text, std::size_t i)
{
  const auto b0 = static_cast<unsigned char>(text[i]);
  std::size_t len = b0 < 0x80             ? 1
                    : (b0 & 0xe0) == 0xc0 ? 2
                    : (b0 & 0xf0) == 0xe0 ? 3
                    : (b0 & 0xf8) == 0xf0 ? 4
                                          : 0;
  if (len == 1) {
    return {b0, 1};
  }
  if (len == 0 || i + len > text.size()) {
    return {b0, 1};
  }
  std::uint32_t cp = b0 & (0xff >> (len + 1));
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xc0) != 0x80) {
      return {b0, 1};
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  static constexpr std::uint32_t k_min[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < k_min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return {b0, 1};
  }
  return {cp, len};
}

} // namespace

std::string xtext_encode(std::string_view text)
{
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x21 && c <= 0x7e && c != '+' && c != '=') {
      out.push_back(ch);
    } else {
      out += fmt::format("+{:02X}", c);
    }
  }
  return out;
}

std::optional<std::string> xtext_decode(std::string_view xtext)
{
  std::string out;
  out.reserve(xtext.size());
  for (std::size_t i = 0; i < xtext.size(); ++i) {
    const auto c = static_cast<unsigned char>(xtext[i]);
    if (c == '+') {
      if (i + 2 >= xtext.size()) {
        return std::nullopt;
      }
      const char h = xtext[i + 1], l = xtext[i + 2];
      if (util::hex_value(h) < 0 || util::hex_value(l) < 0) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(util::hex_value(h) * 16 + util::hex_value(l)));
      i += 2;
      continue;
    }
    if (c < 0x21 || c > 0x7e || c == '=') {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(c));
  }
  return out;
}

std::string utf8_addr_xtext_encode(std::string_view utf8)
{
  std::string out;
  out.reserve(utf8.size() * 2);
  for (std::size_t i = 0; i < utf8.size();) {
    const auto [cp, len] = next_code_point(utf8, i);
    i += len;
    if (cp < 0x80 && is_qchar(static_cast<unsigned char>(cp))) {
      out.push_back(static_cast<char>(cp));
    } else {
      out += fmt::format("\\x{{{:02X}}}", cp);
    }
  }
  return out;
}

std::optional<std::string> utf8_addr_xtext_decode(std::string_view text)
{
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 3 >= text.size() || text[i + 1] != 'x' || text[i + 2] != '{') {
      return std::nullopt;
    }
    const auto close = text.find('}', i + 3);
    if (close == std::string_view::npos || close - (i + 3) < 2 || close - (i + 3) > 6) {
      return std::nullopt;
    }
    std::uint32_t cp = 0;
    for (std::size_t k = i + 3; k < close; ++k) {
      const int v = util::hex_value(text[k]);
      if (v < 0) {
        return std::nullopt;
      }
      cp = cp * 16 + static_cast<std::uint32_t>(v);
    }
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return std::nullopt;
    }
    append_utf8(out, cp);
    i = close;
  }
  return out;
}

bool has_non_ascii(std::string_view text)
{
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return true;
    }
  }
  return false;
}

std::string orcpt_value(std::string_view address)
{
  if (has_non_ascii(address)) {
    return "utf-8;" + utf8_addr_xtext_encode(address);
  }
  return "rfc822;" + xtext_encode(address);
}

bool reported_address_matches(std::string_view reported, std::string_view recipient)
{
  auto same = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
  };
  if (reported.empty()) {
    return false;
  }
  if (same(reported, recipient)) {
    return true;
  }
  const auto decoded = xtext_decode(reported);
  return decoded && same(*decoded, recipient);
}

} // namespace pli::smtp
