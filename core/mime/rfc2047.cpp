// RFC 2047 header decoding over GMime, with the bug #133 workaround (see rfc2047.hpp).
#include "core/mime/rfc2047.hpp"

#include "core/mime/charset.hpp"
#include "core/mime/parse.hpp"
#include "core/util/encoding.hpp"
#include "core/util/gobject_ptr.hpp"
#include "core/util/text.hpp"

#include <optional>
#include <vector>

namespace pli::mime {
namespace {

struct EncodedWord
{
  std::size_t begin = 0; // offset of "=?"
  std::size_t end = 0;   // one past "?="
  std::string_view charset;
  char encoding = 0; // 'b' or 'q'
  std::string_view payload;
};

// Recognises `=?charset?B|Q?payload?=` at `pos` (RFC 2047 section 2, leniently:
// no length limit, the charset may carry an RFC 2231 `*lang`).
std::optional<EncodedWord> encoded_word_at(std::string_view s, std::size_t pos)
{
  if (s.compare(pos, 2, "=?") != 0) {
    return std::nullopt;
  }
  const std::size_t cs_begin = pos + 2;
  const std::size_t cs_end = s.find('?', cs_begin);
  if (cs_end == std::string_view::npos || cs_end == cs_begin || cs_end + 2 >= s.size() ||
      s[cs_end + 2] != '?') {
    return std::nullopt;
  }
  for (std::size_t i = cs_begin; i < cs_end; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c <= ' ' || c >= 0x7F) {
      return std::nullopt;
    }
  }
  const char enc = s[cs_end + 1];
  if (enc != 'b' && enc != 'B' && enc != 'q' && enc != 'Q') {
    return std::nullopt;
  }
  const std::size_t payload_begin = cs_end + 3;
  const std::size_t payload_end = s.find("?=", payload_begin);
  if (payload_end == std::string_view::npos) {
    return std::nullopt;
  }
  EncodedWord w;
  w.begin = pos;
  w.end = payload_end + 2;
  w.charset = s.substr(cs_begin, cs_end - cs_begin);
  w.encoding = (enc == 'b' || enc == 'B') ? 'b' : 'q';
  w.payload = s.substr(payload_begin, payload_end - payload_begin);
  return w;
}

bool only_blanks(std::string_view s)
{
  for (const char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      return false;
    }
  }
  return true;
}

bool same_charset(std::string_view a, std::string_view b)
{
  return util::ascii_lower(a) == util::ascii_lower(b);
}

int base64_value(char c)
{
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

// Lenient decoding of one word's payload, as mail readers do: characters outside the
// alphabet are skipped, `=` ends the word, a trailing partial group is dropped.
void append_base64_decoded(std::string& out, std::string_view payload)
{
  unsigned int bits = 0;
  int nbits = 0;
  for (const char c : payload) {
    if (c == '=') {
      break;
    }
    const int v = base64_value(c);
    if (v < 0) {
      continue;
    }
    bits = (bits << 6) | static_cast<unsigned int>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xFF));
    }
  }
}

} // namespace

ParserOptionsPtr make_parser_options()
{
  ParserOptionsPtr options(g_mime_parser_options_new());
  static const char* fallback[] = {"utf-8", "windows-1252", nullptr};
  g_mime_parser_options_set_fallback_charsets(options.get(), fallback);
  return options;
}

GMimeParserOptions* shared_parser_options()
{
  init();
  static const ParserOptionsPtr options = make_parser_options();
  return options.get();
}

std::string unfold_header_value(std::string_view raw)
{
  std::string out;
  out.reserve(raw.size());
  for (const char c : raw) {
    if (c == '\r' || c == '\n') {
      continue;
    }
    if (c == '\0') {
      out += "\xEF\xBF\xBD"; // U+FFFD: GMime works on C strings
      continue;
    }
    out.push_back(c);
  }
  return std::string(util::trim(out));
}

std::string merge_split_base64_words(std::string_view value)
{
  // Collect the encoded words, left to right.
  std::vector<EncodedWord> words;
  for (std::size_t pos = value.find("=?"); pos != std::string_view::npos;) {
    if (auto w = encoded_word_at(value, pos)) {
      words.push_back(*w);
      pos = value.find("=?", w->end);
    } else {
      pos = value.find("=?", pos + 1);
    }
  }
  std::string out;
  std::size_t copied = 0; // value[0, copied) has been handled
  for (std::size_t i = 0; i < words.size();) {
    // The run of base64 words starting at i: same charset, separated by blanks only.
    std::size_t j = i + 1;
    if (words[i].encoding == 'b') {
      while (j < words.size() && words[j].encoding == 'b' &&
             same_charset(words[j].charset, words[i].charset) &&
             only_blanks(value.substr(words[j - 1].end, words[j].begin - words[j - 1].end))) {
        ++j;
      }
    }
    bool padded_inside = false;
    for (std::size_t k = i; k + 1 < j; ++k) {
      padded_inside = padded_inside || words[k].payload.find('=') != std::string_view::npos;
    }
    if (j - i >= 2 && padded_inside) {
      std::string bytes;
      for (std::size_t k = i; k < j; ++k) {
        append_base64_decoded(bytes, words[k].payload);
      }
      out.append(value.substr(copied, words[i].begin - copied));
      out += "=?";
      out.append(words[i].charset);
      out += "?B?";
      out += util::base64(bytes);
      out += "?=";
      copied = words[j - 1].end;
    }
    i = j;
  }
  out.append(value.substr(copied));
  return out;
}

std::string decode_header_value(std::string_view raw)
{
  const std::string fixed = merge_split_base64_words(unfold_header_value(raw));
  const util::GCharPtr decoded(
      g_mime_utils_header_decode_text(shared_parser_options(), fixed.c_str()));
  return repair_utf8(decoded ? std::string_view(decoded.get()) : std::string_view(fixed));
}

} // namespace pli::mime
