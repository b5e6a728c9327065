// Attachment file-name sanitising, length limits and uniqueness (see names.hpp).
#include "core/mime/names.hpp"

#include "core/mime/charset.hpp"
#include "core/util/gobject_ptr.hpp"
#include "core/util/text.hpp"

#include <glib.h>

#include <algorithm>
#include <array>
#include <utility>

namespace pli::mime {
namespace {

bool is_removed_code_point(gunichar c)
{
  return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F) // C0, DEL, C1
         || c == 0x061C || c == 0x200E || c == 0x200F      // ALM, LRM, RLM
         || (c >= 0x202A && c <= 0x202E)                   // LRE RLE PDF LRO RLO
         || (c >= 0x2066 && c <= 0x2069)                   // LRI RLI FSI PDI
         || c == 0x2028 || c == 0x2029 || c == 0xFEFF;     // line/para separators, BOM
}

// `s` is valid UTF-8.
std::string without_removed_code_points(std::string_view s)
{
  std::string out;
  out.reserve(s.size());
  const char* p = s.data();
  const char* const end = s.data() + s.size();
  while (p < end) {
    const char* next = g_utf8_next_char(p);
    if (!is_removed_code_point(g_utf8_get_char(p))) {
      out.append(p, static_cast<std::size_t>(next - p));
    }
    p = next;
  }
  return out;
}

std::string_view last_path_component(std::string_view s)
{
  const std::size_t sep = s.find_last_of("/\\");
  return sep == std::string_view::npos ? s : s.substr(sep + 1);
}

// A declared name without leading spaces and tabs, nor trailing spaces, tabs and dots.
std::string_view trim_name(std::string_view s)
{
  return util::trim_end(util::trim_start(s, " \t"), " \t.");
}

// The extension with its dot, when the name has a short one after a non-empty stem.
std::string_view extension_of(std::string_view name)
{
  constexpr std::size_t k_max_extension_bytes = 16;
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || name.size() - dot > k_max_extension_bytes) {
    return {};
  }
  return name.substr(dot);
}

// The longest prefix of `s` of at most `max_bytes` bytes ending on a character boundary.
std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes)
{
  if (s.size() <= max_bytes) {
    return s;
  }
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return s.substr(0, cut);
}

} // namespace

std::string sanitize_file_name(std::string_view declared)
{
  std::string bytes(declared);
  std::erase(bytes, '\0'); // a control like the others, not a character to show as U+FFFD
  const std::string clean = without_removed_code_points(repair_utf8(bytes));
  const std::string_view name = trim_name(last_path_component(clean));
  if (name.empty() || name == "." || name == "..") {
    return {};
  }
  return std::string(name);
}

std::string file_name_from_subject(std::string_view subject)
{
  std::string s = repair_utf8(subject);
  for (char& c : s) {
    if (c == '/' || c == '\\') {
      c = '_';
    }
  }
  return sanitize_file_name(s);
}

std::string extension_for_media_type(std::string_view media_type)
{
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 32> k_table = {{
      {"application/pdf", ".pdf"},
      {"application/zip", ".zip"},
      {"application/x-zip-compressed", ".zip"},
      {"application/gzip", ".gz"},
      {"application/x-gzip", ".gz"},
      {"application/msword", ".doc"},
      {"application/vnd.ms-excel", ".xls"},
      {"application/vnd.ms-powerpoint", ".ppt"},
      {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"},
      {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"},
      {"application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx"},
      {"application/vnd.oasis.opendocument.text", ".odt"},
      {"application/vnd.oasis.opendocument.spreadsheet", ".ods"},
      {"application/xml", ".xml"},
      {"application/json", ".json"},
      {"application/rtf", ".rtf"},
      {"application/octet-stream", ".bin"},
      {"application/pkcs7-signature", ".p7s"},
      {"application/pgp-signature", ".asc"},
      {"application/ics", ".ics"},
      {"image/png", ".png"},
      {"image/jpeg", ".jpg"},
      {"image/gif", ".gif"},
      {"image/svg+xml", ".svg"},
      {"text/plain", ".txt"},
      {"text/html", ".html"},
      {"text/calendar", ".ics"},
      {"text/csv", ".csv"},
      {"text/xml", ".xml"},
      {"message/rfc822", ".eml"},
      {"message/global", ".eml"},
      {"message/delivery-status", ".txt"},
  }};
  for (const auto& [type, ext] : k_table) {
    if (type == media_type) {
      return std::string(ext);
    }
  }
  return {};
}

std::string default_file_name(std::size_t ordinal, std::string_view media_type)
{
  return "piece-jointe-" + std::to_string(ordinal) + extension_for_media_type(media_type);
}

std::string limit_file_name(std::string_view name, std::size_t max_bytes)
{
  if (max_bytes == 0 || name.size() <= max_bytes) {
    return std::string(name);
  }
  std::string_view ext = extension_of(name);
  if (ext.size() * 2 > max_bytes) {
    ext = {};
  }
  const std::string_view stem = name.substr(0, name.size() - ext.size());
  return std::string(utf8_prefix(stem, max_bytes - ext.size())) + std::string(ext);
}

std::string UniqueNames::claim(std::string_view name)
{
  std::string candidate = limit_file_name(name, m_max_bytes);
  if (m_taken.insert(util::fold_case(candidate)).second) {
    return candidate;
  }
  const std::string base = candidate;
  const std::string_view ext = extension_of(base);
  const std::string_view stem = std::string_view(base).substr(0, base.size() - ext.size());
  // Terminates: at most m_taken.size() numbers can be taken.
  for (std::size_t n = 2;; ++n) {
    const std::string suffix = " (" + std::to_string(n) + ")";
    std::size_t room = stem.size();
    if (m_max_bytes != 0) {
      const std::size_t fixed = suffix.size() + ext.size();
      room = m_max_bytes > fixed ? std::min(room, m_max_bytes - fixed) : 0;
    }
    candidate = std::string(utf8_prefix(stem, room)) + suffix + std::string(ext);
    if (m_taken.insert(util::fold_case(candidate)).second) {
      return candidate;
    }
  }
}

} // namespace pli::mime
