// The CLI's one printer interface (CONVENTIONS.md; notmuch's sprinter is the model):
// a command describes its result once, as text parts for people and as one JSON
// document for scripts; the printer chosen by --json keeps what its reader needs.
// JSON documents carry `format_version` (views.hpp).
#pragma once

#include <nlohmann/json.hpp>

#include <iosfwd>
#include <memory>
#include <string>
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

// Display width of UTF-8 text (one column per code point).
std::size_t display_width(const std::string& s);
// Cuts to `max` columns, ending in "…" when cut; control characters become spaces.
std::string cut(const std::string& s, std::size_t max);

} // namespace pli::cli
