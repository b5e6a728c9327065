// Byte encodings: hex, RFC 4648 base32 (lower-case, no padding), base64, base64url.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pli::util {

std::string hex_encode(std::string_view bytes);
// The value of one hex digit (either case), or -1.
int hex_value(char c);
// Returns nullopt on odd length or a non-hex digit.
std::optional<std::string> hex_decode(std::string_view hex);
std::string base32_lower(std::string_view bytes);
std::string base64(std::string_view bytes);    // standard alphabet, padded
std::string base64url(std::string_view bytes); // URL-safe, no padding
// Returns nullopt on invalid input.
std::optional<std::string> base64_decode(std::string_view text);

// Lower-cases ASCII letters only.
std::string ascii_lower(std::string_view s);

} // namespace pli::util
