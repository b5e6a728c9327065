// Text: from outside made safe to store and to show (valid UTF-8, RFC 3629, and for text
// shown on one line, without C0 and C1 control characters); trimmed; folded for comparison
// (case, accents); measured in terminal columns. The project's one text module: GLib's
// Unicode tables (normalisation, case, East Asian width) do the Unicode part.
//
// Every text pli receives (HTTP headers and form fields, reply text and file names, MIME
// headers, DSN fields, SMTP replies, command-line arguments) goes through one of these at
// the boundary: the store's records are protobuf messages whose parser refuses a `string`
// field that is not valid UTF-8, so one stray byte would make the record unreadable.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pli::util {

// True when `bytes` is well-formed UTF-8 (RFC 3629: no overlong form, no surrogate, nothing
// above U+10FFFF); NUL is allowed. The definition protobuf's parser applies to `string`
// fields.
bool is_utf8(std::string_view bytes);

// `bytes` as valid UTF-8: each ill-formed sequence (its maximal subpart, as in Unicode 15
// §3.9 "U+FFFD substitution of maximal subparts") becomes U+FFFD; valid text is returned
// unchanged. This is byte for byte what nlohmann::json writes with
// error_handler_t::replace, so that an event whose text is repaired still has the canonical
// JSON (and the hash) it was chained with (store/evidence.hpp).
std::string to_utf8(std::string_view bytes);

// Text shown on one line (a user agent, a file name, a DSN field, an SMTP reply): to_utf8,
// every C0 control, DEL and C1 control (U+0000-U+001F, U+007F-U+009F) replaced by a space,
// then cut to at most `max_bytes` bytes at a character boundary.
std::string clean_line(std::string_view bytes, std::size_t max_bytes = std::string::npos);

// Text shown on several lines (a reply's text, a message body): to_utf8, and the controls
// of clean_line replaced by a space except tab, line feed and carriage return.
std::string clean_text(std::string_view bytes);

// The ASCII white space trim() removes by default.
inline constexpr std::string_view k_ascii_space = " \t\r\n";

// `s` without the leading and trailing bytes that are in `chars` (ASCII characters).
std::string_view trim(std::string_view s, std::string_view chars = k_ascii_space);
// `s` without its leading bytes in `chars`.
std::string_view trim_start(std::string_view s, std::string_view chars = k_ascii_space);
// `s` without its trailing bytes in `chars`.
std::string_view trim_end(std::string_view s, std::string_view chars = k_ascii_space);

// Lower case, accents removed, for matching words whatever their case and accents (the
// keyword index, subject tags): NFKD, combining marks dropped, lower-cased; œ -> oe,
// æ -> ae, ß -> ss, ’ -> '. Text that is not UTF-8 keeps only its ASCII bytes (others, and
// NUL, become spaces).
std::string fold(const std::string& text);
// Unicode case folding (g_utf8_casefold: "Straße" and "STRASSE" fold alike), for
// comparing names whatever their case; accents kept. `text` must be valid UTF-8 (to_utf8).
std::string fold_case(std::string_view text);

// The columns a terminal gives `text` (UTF-8, NFC-normalised first): 2 for a wide or
// full-width character (CJK, most emoji), 0 for a combining mark or another zero-width
// character, 1 for the others. Bytes that are not UTF-8 count one column each.
std::size_t display_width(std::string_view text);
// The longest prefix of `text` of at most `columns` columns (a character never split from
// the combining marks that follow it).
std::string_view prefix_of_width(std::string_view text, std::size_t columns);

} // namespace pli::util
