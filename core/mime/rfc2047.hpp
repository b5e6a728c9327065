// RFC 2047 encoded words in header values, and the GMime parser options pli uses.
//
// GMime 3.2.13 (Debian 12) drops the second of two adjacent base64 encoded words in
// the same charset when the first ends in `=` padding (upstream bug #133, fixed in
// 3.2.14 by 1a33a55b): `=?utf-8?B?w6k=?= =?utf-8?B?w6kudHh0?=` decodes to "é" instead of
// "éé.txt". It hits Subject, display names and RFC 2047 file names. The workaround
// merges such a run of words into one equivalent word before GMime sees the text.
// Decoding the merged word gives the same result as a correct decoder would
// (RFC 2047 section 6.2: adjacent words are joined, so a character may span words).
#pragma once

#include <gmime/gmime.h>

#include <memory>
#include <string>
#include <string_view>

namespace pli::mime {

struct ParserOptionsFree
{
  void operator()(GMimeParserOptions* options) const noexcept
  {
    if (options != nullptr) {
      g_mime_parser_options_free(options);
    }
  }
};
using ParserOptionsPtr = std::unique_ptr<GMimeParserOptions, ParserOptionsFree>;

// New parser options: GMime's LOOSE defaults, with fallback charsets utf-8 then
// windows-1252 for raw 8-bit headers and parameters. Requires init().
ParserOptionsPtr make_parser_options();

// The same options, created once and shared read-only (for header decoding).
GMimeParserOptions* shared_parser_options();

// Unfolds a raw header value (drops CR and LF, RFC 5322 section 2.2.3), replaces NUL
// with U+FFFD and trims surrounding blanks.
std::string unfold_header_value(std::string_view raw);

// Rewrites each run of adjacent base64 encoded words in the same charset, in which a
// word other than the last carries `=` padding, as one base64 word holding the
// concatenated bytes. Everything else is returned unchanged.
std::string merge_split_base64_words(std::string_view value);

} // namespace pli::mime
