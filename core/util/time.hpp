// Time: microseconds since the Unix epoch (UTC), and how people and JSON see it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pli::util {

using Micros = std::int64_t;

// The clock is injected where tests need control over it.
using Clock = std::function<Micros()>;
Micros now_micros();

// ISO 8601 with the offset of `timezone` (IANA name), e.g. 2022-07-01T16:26:45+02:00.
// An unknown zone falls back to UTC.
std::string format_iso(Micros t, std::string_view timezone);
// "dd/mm/yyyy - HH:MM:SS" in `timezone`, as the procurement platform shows it.
std::string format_human(Micros t, std::string_view timezone);
// "dd/mm/yyyy HH:MM" in `timezone`.
std::string format_human_short(Micros t, std::string_view timezone);
// RFC 5322 date-time in UTC, for mail headers.
std::string format_rfc5322(Micros t);
// Parses "YYYY-MM-DD" or "YYYY-MM-DD HH:MM[:SS]" as local time in `timezone`.
std::optional<Micros> parse_local(std::string_view text, std::string_view timezone);
// True when `timezone` names a zone of the tz database.
bool valid_timezone(std::string_view timezone);

} // namespace pli::util
