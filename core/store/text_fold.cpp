// Accent- and case-insensitive words for the keyword index (util::fold, GLib's tables).
#include "core/store/store.hpp"
#include "core/util/text.hpp"

#include <glib.h>

#include <set>

namespace pli::store {

std::vector<std::string> index_words(const std::string& text, std::size_t max_words)
{
  std::string folded = util::fold(text);
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
