// The receipts' font: a subset of DejaVuSans (fonts-dejavu-core) made at build time by
// cmake/font-subset.py and compiled in, covering the Latin scripts of Europe, French
// typography (« » € œ, U+202F) and common punctuation. libharu's cost per document grows
// with the font's cmap and glyph table (it looks up a glyph for each of the 65,536 codes of
// its UTF-8 encoder, and copies the glyph table into each PDF): the subset makes a receipt
// several times cheaper than the whole font, which stays the fall-back for text the subset
// does not cover (Greek, Cyrillic...: pdf.cpp).
#pragma once

#include <span>
#include <string_view>

namespace pli::receipt {

struct CodeRange
{
  char32_t first;
  char32_t last; // inclusive
};

// The subset's TrueType bytes (generated).
std::string_view subset_font_data();
// The code points the subset has glyphs for, as sorted disjoint ranges (generated).
std::span<const CodeRange> subset_font_ranges();

// What the text drawn on a receipt needs from its font.
struct TextScan
{
  char32_t max_code_point = 0; // the highest character drawn
  bool subset_covers = true;   // the subset has a glyph for every character drawn
};

// Adds the characters of the UTF-8 text `s` (newlines aside) to `scan`. Invalid UTF-8 is
// not covered by the subset.
void scan_text(std::string_view s, TextScan& scan);

// True when the subset has a glyph for every character of the UTF-8 text `s`.
bool subset_covers(std::string_view s);

} // namespace pli::receipt
