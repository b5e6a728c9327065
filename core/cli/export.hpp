// `pli export`: one row per delivery for archiving, as CSV (RFC 4180, UTF-8 with a BOM so
// that spreadsheet programs read the accents, CRLF line ends) or as JSON items (the
// delivery shape of `pli show --json` with the message's fields).
#pragma once

#include "core/store/store.hpp"

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace pli::cli {

// The UTF-8 byte order mark that starts a CSV export.
constexpr std::string_view k_utf8_bom = "\xEF\xBB\xBF";

// The header line of the CSV export (CRLF-terminated).
std::string csv_header();
// One CSV line (CRLF-terminated) for a delivery; times in ISO 8601 in `timezone`.
std::string csv_row(const store::ListItem& item, const std::string& timezone);
// A CSV field, quoted when it holds a comma, a semicolon, a quote, CR or LF (quotes
// doubled); one that starts with = + - @, a tab or CR (a formula to a spreadsheet) is
// neutralised with a leading ' (and quoted when it holds any of those).
std::string csv_field(const std::string& value);
// One JSON export item: DELIVERY with its events, plus the message's fields.
nlohmann::json export_item(const store::ListItem& item, const std::vector<store::pb::Event>& events,
                           const std::string& timezone);

} // namespace pli::cli
