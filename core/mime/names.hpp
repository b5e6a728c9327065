// Attachment file names: making a name taken from mail safe to show and to save.
//
// The name a sender declares (RFC 2183 `filename`, RFC 2045 `name`, decoded from
// RFC 2231/2047 by GMime) is untrusted: it may hold directories (`../../etc/passwd`,
// `C:\temp\a.exe`), control or bidi characters (CR/LF, U+202E to hide an extension),
// be empty, `.` or `..`, or be very long. GMime sanitises nothing.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <string_view>

namespace pli::mime {

// Returns the safe form of a declared name: valid UTF-8 (windows-1252 fallback for
// stray bytes), without C0/DEL/C1 controls, bidi controls, U+2028/9 and U+FEFF,
// reduced to its last path component (both '/' and '\' separate), without leading
// blanks or trailing blanks and dots (Windows drops those). Returns "" when nothing
// usable is left (empty, ".", ".."): the caller then uses default_file_name().
// Does not limit the length (see limit_file_name()).
std::string sanitize_file_name(std::string_view declared);

// The same for a name made from a message Subject (a forwarded message): '/' and '\'
// become '_' instead of cutting the subject.
std::string file_name_from_subject(std::string_view subject);

// A usual extension (with the dot) for a lower-case media type, e.g. ".pdf" for
// application/pdf, ".eml" for message/rfc822; "" when none is known.
std::string extension_for_media_type(std::string_view media_type);

// "piece-jointe-N" plus the extension of the media type.
std::string default_file_name(std::size_t ordinal, std::string_view media_type);

// Cuts `name` to at most `max_bytes` bytes at a UTF-8 character boundary, keeping its
// extension (the part from the last '.', when short) whenever it fits.
std::string limit_file_name(std::string_view name, std::size_t max_bytes);

// Hands out names that are unique within one message: the second "a.pdf" becomes
// "a (2).pdf", compared case-insensitively (Unicode case folding), as the file
// systems recipients save to usually do. Every returned name respects `max_bytes`.
class UniqueNames
{
public:
  explicit UniqueNames(std::size_t max_bytes) : m_max_bytes(max_bytes) {}
  std::string claim(std::string_view name);

private:
  std::size_t m_max_bytes;
  std::set<std::string> m_taken; // case-folded
};

} // namespace pli::mime
