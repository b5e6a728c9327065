// util/text: trim, folding, display width; the CLI's tables aligned by display width.
#include "core/cli/printer.hpp"
#include "core/util/text.hpp"

#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace util = pli::util;

TEST_CASE("text: trim, trim_start, trim_end, with the default or given characters", "[text]")
{
  CHECK(util::trim(" \t\r\n a b \n\t") == "a b");
  CHECK(util::trim("") == "");
  CHECK(util::trim(" \t ") == "");
  CHECK(util::trim("\fx\v") == "\fx\v"); // not in the default set
  CHECK(util::trim("\fx\v", " \t\r\n\f\v") == "x");
  CHECK(util::trim("  x  ", " ") == "x");
  CHECK(util::trim("\nx\n", " ") == "\nx\n");
  CHECK(util::trim_start("  x  ") == "x  ");
  CHECK(util::trim_end("  x  ") == "  x");
  CHECK(util::trim_end(util::trim_start(" \tname. .", " \t"), " \t.") == "name");
  CHECK(util::trim_end("...", ".").empty());
}

TEST_CASE("text: fold removes case and accents; fold_case only case", "[text]")
{
  CHECK(util::fold("Réponse À Œuvre ÇA") == "reponse a oeuvre ca");
  CHECK(util::fold("e\xcc\x81t\xc3\xa9") == "ete"); // decomposed and composed é
  CHECK(util::fold("Straße Æon l’avis") == "strasse aeon l'avis");
  CHECK(util::fold(std::string("a\0\xff", 3)) == "a  ");
  CHECK(util::fold_case("Straße") == util::fold_case("STRASSE"));
  CHECK(util::fold_case("ÉTÉ") == "été");
}

TEST_CASE("text: display width counts terminal columns", "[text]")
{
  struct Row
  {
    const char* text;
    std::size_t width;
  };
  for (const Row& row : {
           Row{"", 0}, Row{"abc", 3}, Row{"été", 3}, // composed
           Row{"e\xcc\x81t\xc3\xa9", 3},             // e + U+0301 (decomposed)
           Row{"例子", 4},                           // CJK: wide
           Row{"ＡＢ", 4},                           // full-width Latin
           Row{"😀", 2},                              // emoji
           Row{"a\xe2\x80\x8b"
               "b",
               2}, // zero-width space
           Row{"\xff"
               "ab",
               3}, // not UTF-8: one column a byte
       }) {
    INFO(row.text);
    CHECK(util::display_width(row.text) == row.width);
  }
  CHECK(util::prefix_of_width("例子ab", 3) == "例");
  CHECK(util::prefix_of_width("例子ab", 4) == "例子");
  CHECK(util::prefix_of_width("e\xcc\x81"
                              "a",
                              1) == "e\xcc\x81"); // the mark stays
  CHECK(util::prefix_of_width("abc", 10) == "abc");
  CHECK(util::prefix_of_width("abc", 0).empty());
}

TEST_CASE("cli: cut counts display columns", "[text][cli]")
{
  CHECK(pli::cli::cut("abcdef", 4) == "abc…");
  CHECK(pli::cli::cut("abcd", 4) == "abcd");
  CHECK(pli::cli::cut("例子例子", 5) == "例子…");
  CHECK(pli::cli::cut("e\xcc\x81"
                      "e\xcc\x81"
                      "e\xcc\x81",
                      3) == "e\xcc\x81"
                            "e\xcc\x81"
                            "e\xcc\x81");
  CHECK(pli::cli::cut("a\nb", 10) == "a b");
}

TEST_CASE("cli: a table's columns line up whatever the width of the characters", "[text][cli]")
{
  std::ostringstream out;
  auto p = pli::cli::make_printer(pli::cli::Format::text, out);
  p->table({"Objet", "Id"}, {{"plain", "1"},
                             {"例子广告", "2"},        // wide
                             {"re\xcc\x81ponse", "3"}, // decomposed
                             {"fe\xcc\x81te 😀", "4"},  // decomposed and emoji
                             {"ＡＢ", "5"}});          // full width
  std::istringstream lines(out.str());
  std::string line;
  std::vector<std::size_t> id_column;
  while (std::getline(lines, line)) {
    // The column of the last cell: the width of what comes before it.
    const auto last = line.find_last_of(' ');
    REQUIRE(last != std::string::npos);
    id_column.push_back(util::display_width(line.substr(0, last + 1)));
  }
  REQUIRE(id_column.size() == 6);
  for (std::size_t c : id_column) {
    CHECK(c == id_column.front());
  }
  CHECK(id_column.front() == 10); // "例子广告" (8 columns) and two spaces
}
