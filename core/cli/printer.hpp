// The CLI's one printer interface (notmuch's sprinter is the model):
// a command describes its result once, as text parts for people and as one JSON
// document for scripts; the printer chosen by --json keeps what its reader needs.
// JSON documents carry `format_version` (views.hpp).
#pragma once

#include <nlohmann/json.hpp>

#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pli::cli {

class Printer
{
public:
  virtual ~Printer() = default;
  // A titled block ("Destinataire bob@… — Délivré").
  virtual void heading(const std::string& text) = 0;
  // "Label        value", labels aligned on `label_width` display columns.
  virtual void field(const std::string& label, const std::string& value,
                     std::size_t label_width = 14) = 0;
  // An aligned table (columns padded to the widest cell, UTF-8 aware).
  virtual void table(const std::vector<std::string>& head,
                     const std::vector<std::vector<std::string>>& rows) = 0;
  // A sentence.
  virtual void line(const std::string& text) = 0;
  // The whole result for scripts; `format_version` is added when missing.
  virtual void document(nlohmann::json doc) = 0;
};

enum class Format
{
  text,
  json
};

std::unique_ptr<Printer> make_printer(Format format, std::ostream& out);

// `s` made safe for a terminal: escape sequences (ESC [ … CSI, ESC ] … OSC up to BEL or
// ESC \, other ESC pairs) are removed, other C0 controls and DEL become a space (newlines
// kept when `keep_newlines`), C1 controls (U+0080–U+009F) and bytes that are not UTF-8
// become '?'. The text printer passes everything it writes through it: subjects,
// addresses, names and DSN text come from outside.
std::string terminal_safe(std::string_view s, bool keep_newlines = false);
// Cuts to `max` display columns (util::display_width: wide characters count two), ending
// in "…" when cut; line breaks and tabs become spaces.
std::string cut(const std::string& s, std::size_t max);

} // namespace pli::cli
