// Encodings of addresses and ids in SMTP parameters and delivery reports: RFC 3461's
// xtext (ORCPT's "rfc822;" values, ENVID) and RFC 6533's utf-8-addr-xtext (ORCPT's
// "utf-8;" values for internationalised addresses, RFC 6531), with their decoders, and
// the ORCPT value an address needs.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pli::smtp {

// RFC 3461 §4: every byte outside "!".."~", and "+" and "=", as "+XX" (upper-case hex).
// Returns the encoded text (ASCII only).
std::string xtext_encode(std::string_view text);

// Decodes "+XX" sequences (lower-case hex digits are taken too). Returns nullopt when a
// "+" is not followed by two hex digits, or the text holds a byte outside "!".."~" or a "=" (not
// xtext).
std::optional<std::string> xtext_decode(std::string_view xtext);

// RFC 6533 §3 utf-8-addr-xtext: QCHARs as they are; every other character ("\", "+", "=",
// controls, space, and every non-ASCII code point of the UTF-8 text) as "\x{HEX}" with
// upper-case hex and no leading zero beyond two digits. Returns the encoded text (ASCII
// only); a byte sequence that is not UTF-8 is encoded byte by byte as code points
// U+0080..U+00FF (never happens for an address Postfix accepted).
std::string utf8_addr_xtext_encode(std::string_view utf8);

// Decodes RFC 6533's utf-8-addr-xtext and utf-8-addr-unitext: "\x{HEX}" becomes the code
// point in UTF-8; other characters (including raw UTF-8) are kept. Returns nullopt for a
// malformed escape, a code point beyond U+10FFFF or a surrogate.
std::optional<std::string> utf8_addr_xtext_decode(std::string_view text);

// True when `text` holds a byte >= 0x80.
bool has_non_ascii(std::string_view text);

// The ORCPT parameter's value for `address` (without "ORCPT="): "rfc822;" + xtext for
// an ASCII address, "utf-8;" + utf-8-addr-xtext for an internationalised one.
std::string orcpt_value(std::string_view address);

// True when `reported`, an address of a DSN's Final-Recipient or Original-Recipient field
// (its type removed, RFC 6533 escapes decoded), names `recipient`: the same text ignoring
// ASCII case, or the same once xtext-decoded (a reporting MTA that copied the ORCPT value
// without decoding it, RFC 3461 §4.2). An empty `reported` names nothing.
bool reported_address_matches(std::string_view reported, std::string_view recipient);

} // namespace pli::smtp
