// Character-set conversion to valid UTF-8 with a windows-1252 fallback (see charset.hpp).
#include "core/mime/charset.hpp"

#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <gmime/gmime.h>

#include <array>
#include <cerrno>
#include <cstdint>

namespace pli::mime {
namespace {

// windows-1252 0x80-0x9F (WHATWG encoding standard); 0x81, 0x8D, 0x8F, 0x90 and 0x9D
// are undefined there and map to the C1 control of the same value, as in Latin-1.
constexpr std::array<std::uint16_t, 32> k_cp1252_high = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

constexpr gunichar k_replacement = 0xFFFD;

void append_code_point(std::string& out, gunichar c)
{
  char buf[6];
  const int n = g_unichar_to_utf8(c, buf);
  out.append(buf, static_cast<std::size_t>(n));
}

void append_cp1252_byte(std::string& out, unsigned char b)
{
  if (b == 0) {
    append_code_point(out, k_replacement);
  } else if (b < 0x80) {
    out.push_back(static_cast<char>(b));
  } else if (b < 0xA0) {
    append_code_point(out, k_cp1252_high[b - 0x80]);
  } else {
    append_code_point(out, b);
  }
}

enum class CharsetKind
{
  utf8_like,
  cp1252_like,
  other
};

CharsetKind classify(std::string_view charset)
{
  const std::string cs = util::ascii_lower(util::trim(charset));
  if (cs.empty() || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii" ||
      cs == "ansi_x3.4-1968" || cs == "7bit" || cs == "8bit") {
    return CharsetKind::utf8_like;
  }
  // WHATWG reads ISO-8859-1 (and its aliases) as windows-1252: mail labelled Latin-1
  // routinely carries the code page's smart quotes in 0x80-0x9F.
  if (cs == "iso-8859-1" || cs == "iso8859-1" || cs == "iso_8859-1" || cs == "latin1" ||
      cs == "latin-1" || cs == "l1" || cs == "windows-1252" || cs == "cp1252" || cs == "x-cp1252") {
    return CharsetKind::cp1252_like;
  }
  return CharsetKind::other;
}

// Owns a conversion descriptor from g_mime_iconv_open (empty when it failed).
class Iconv
{
public:
  explicit Iconv(iconv_t cd) : m_cd(cd) {}
  ~Iconv()
  {
    if (*this) {
      g_mime_iconv_close(m_cd);
    }
  }
  Iconv(const Iconv&) = delete;
  Iconv& operator=(const Iconv&) = delete;
  explicit operator bool() const { return m_cd != reinterpret_cast<iconv_t>(-1); }
  iconv_t get() const { return m_cd; }

private:
  iconv_t m_cd;
};

// Converts with iconv; a byte that is illegal (or an incomplete sequence at the end) is
// read as windows-1252 and skipped, so no input byte disappears.
std::string iconv_to_utf8(iconv_t cd, std::string_view bytes, bool& fell_back)
{
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 2);
  char* in = const_cast<char*>(bytes.data()); // iconv's signature; the input is not written
  std::size_t in_left = bytes.size();
  std::array<char, 4096> buf;
  while (in_left > 0) {
    char* o = buf.data();
    std::size_t o_left = buf.size();
    const std::size_t rc = iconv(cd, &in, &in_left, &o, &o_left);
    out.append(buf.data(), buf.size() - o_left);
    if (rc != static_cast<std::size_t>(-1)) {
      continue;
    }
    if (errno == E2BIG) {
      continue;
    }
    // EILSEQ, EINVAL (incomplete at the end) or anything else: one byte as windows-1252.
    fell_back = true;
    append_cp1252_byte(out, static_cast<unsigned char>(*in));
    ++in;
    --in_left;
  }
  char* o = buf.data();
  std::size_t o_left = buf.size();
  iconv(cd, nullptr, nullptr, &o, &o_left); // flush the shift state (ISO-2022-*)
  out.append(buf.data(), buf.size() - o_left);
  return out;
}

} // namespace

bool is_valid_utf8(std::string_view bytes)
{
  return g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr) != FALSE;
}

std::string windows1252_to_utf8(std::string_view bytes)
{
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 2);
  for (const char c : bytes) {
    append_cp1252_byte(out, static_cast<unsigned char>(c));
  }
  return out;
}

std::string repair_utf8(std::string_view bytes)
{
  std::string out;
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const gchar* end = nullptr;
    if (g_utf8_validate(p, static_cast<gssize>(left), &end) != FALSE) {
      out.append(p, left);
      break;
    }
    const auto good = static_cast<std::size_t>(end - p);
    out.append(p, good);
    append_cp1252_byte(out, static_cast<unsigned char>(p[good]));
    p += good + 1;
    left -= good + 1;
  }
  return out;
}

std::string to_utf8(std::string_view bytes, std::string_view charset, bool* fell_back)
{
  bool fb = false;
  std::string out;
  switch (classify(charset)) {
  case CharsetKind::cp1252_like:
    out = windows1252_to_utf8(bytes);
    break;
  case CharsetKind::utf8_like:
    if (is_valid_utf8(bytes)) {
      out.assign(bytes);
    } else {
      fb = true;
      out = repair_utf8(bytes);
    }
    break;
  case CharsetKind::other: {
    std::string cs(util::trim(charset));
    if (util::ascii_lower(cs) == "unicode-1-1-utf-7") {
      cs = "UTF-7"; // Microsoft's name (Exchange DSNs), unknown to iconv and GMime
    }
    // g_mime_iconv_open maps mail charset names (ks_c_5601-1987, x-sjis, ...) to
    // names iconv knows.
    const Iconv cd(g_mime_iconv_open("UTF-8", cs.c_str()));
    if (!cd) {
      // An unknown charset is treated as none: only bytes that are not UTF-8 fall back.
      fb = !is_valid_utf8(bytes);
      out = fb ? repair_utf8(bytes) : std::string(bytes);
      break;
    }
    out = iconv_to_utf8(cd.get(), bytes, fb);
    if (!is_valid_utf8(out)) {
      out = repair_utf8(out); // only NUL can be left (iconv output is UTF-8)
    }
    break;
  }
  }
  if (fell_back != nullptr) {
    *fell_back = fb;
  }
  return out;
}

} // namespace pli::mime
