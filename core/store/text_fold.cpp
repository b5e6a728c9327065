// Accent- and case-insensitive words for the keyword index (GLib's Unicode tables).
#include "core/store/store.hpp"
#include "core/util/gobject_ptr.hpp"

#include <glib.h>

#include <set>

namespace pli::store {

std::string fold(const std::string& text)
{
  if (!g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr)) {
    std::string ascii;
    for (char c : text) {
      // NUL too: g_utf8_validate refuses it, and keeping it recursed without end.
      ascii.push_back(c != '\0' && static_cast<unsigned char>(c) < 0x80 ? c : ' ');
    }
    return fold(ascii);
  }
  const util::GCharPtr nfkd(
      g_utf8_normalize(text.data(), static_cast<gssize>(text.size()), G_NORMALIZE_NFKD));
  if (nfkd == nullptr) {
    return {};
  }
  std::string out;
  out.reserve(text.size());
  for (const gchar* p = nfkd.get(); *p != '\0'; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (g_unichar_ismark(c)) {
      continue;
    }
    c = g_unichar_tolower(c);
    switch (c) {
    case 0x153: // œ
      out += "oe";
      continue;
    case 0xE6: // æ
      out += "ae";
      continue;
    case 0xDF: // ß
      out += "ss";
      continue;
    case 0x2019: // ’
      out += '\'';
      continue;
    default:
      break;
    }
    char buf[6];
    int n = g_unichar_to_utf8(c, buf);
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::vector<std::string> index_words(const std::string& text, std::size_t max_words)
{
  std::string folded = fold(text);
  std::vector<std::string> words;
  std::set<std::string> seen;
  std::string current;
  auto flush = [&] {
    if (g_utf8_strlen(current.c_str(), -1) >= 2 && current.size() <= 64 &&
        seen.insert(current).second) {
      words.push_back(current);
    }
    current.clear();
  };
  for (const gchar* p = folded.c_str(); *p != '\0'; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (g_unichar_isalnum(c)) {
      char buf[6];
      current.append(buf, static_cast<std::size_t>(g_unichar_to_utf8(c, buf)));
    } else {
      flush();
      if (words.size() >= max_words) {
        return words;
      }
    }
  }
  flush();
  return words;
}

} // namespace pli::store
