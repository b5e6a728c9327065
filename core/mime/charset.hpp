// Character sets: turning the bytes found in mail into valid UTF-8, never dropping a byte.
//
// Mail text comes with a declared charset (RFC 2045 `charset=`, RFC 2047/2231 words), a
// wrong one, or none. Every string pli::mime hands out is valid UTF-8 in the sense of
// g_utf8_validate (which also rejects NUL). The rule:
//   - a declared charset GMime/iconv knows (other than UTF-8/US-ASCII/ISO-8859-1) is
//     converted with iconv through GMime's charset-name mapping;
//   - UTF-8, US-ASCII, a missing or an unknown charset: valid UTF-8 is kept as is;
//   - every byte that is not valid in its charset is read as windows-1252 (WHATWG's
//     reading of ISO-8859-1 and US-ASCII too), so nothing is lost silently; NUL
//     becomes U+FFFD.
#pragma once

#include <string>
#include <string_view>

namespace pli::mime {

// True when `bytes` is valid UTF-8 without NUL (g_utf8_validate's definition).
bool is_valid_utf8(std::string_view bytes);

// Reads every byte as windows-1252 (0x80-0x9F from the code page, the rest as
// Latin-1; the five undefined code points map to the C1 control of the same value).
// NUL becomes U+FFFD. Always valid UTF-8.
std::string windows1252_to_utf8(std::string_view bytes);

// Keeps the valid UTF-8 sequences of `bytes` and reads each other byte as
// windows-1252; NUL becomes U+FFFD. Returns `bytes` unchanged when already valid.
std::string repair_utf8(std::string_view bytes);

// Converts `bytes` declared in `charset` (may be empty: none declared) to valid UTF-8
// following the rule above. `fell_back` (optional) is set to true when a byte had to
// be read as windows-1252 or the charset was unknown, i.e. when the declared charset
// did not describe the bytes.
std::string to_utf8(std::string_view bytes, std::string_view charset, bool* fell_back = nullptr);

} // namespace pli::mime
