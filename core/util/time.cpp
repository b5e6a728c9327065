#include "core/util/time.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <utility>

namespace pli::util {

using std::chrono::microseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

Micros now_micros()
{
  return std::chrono::duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

static const date::time_zone* zone_or_null(std::string_view timezone)
{
  try {
    return date::locate_zone(std::string(timezone));
  } catch (const std::exception&) {
    return nullptr;
  }
}

bool valid_timezone(std::string_view timezone)
{
  return zone_or_null(timezone) != nullptr;
}

static date::sys_seconds to_sys(Micros t)
{
  return date::floor<seconds>(date::sys_time<microseconds>(microseconds(t)));
}

static std::string format_zoned(Micros t, std::string_view timezone, const char* fmt)
{
  const auto* zone = zone_or_null(timezone);
  if (zone == nullptr) {
    zone = date::locate_zone("UTC");
  }
  return date::format(fmt, date::make_zoned(zone, to_sys(t)));
}

std::string format_iso(Micros t, std::string_view timezone)
{
  std::string s = format_zoned(t, timezone, "%Y-%m-%dT%H:%M:%S%z");
  // +0200 -> +02:00
  if (s.size() >= 5) {
    s.insert(s.size() - 2, ":");
  }
  return s;
}

// The local date and time of `t` in `timezone` (UTC when unknown), without date::format's
// stream and locale set-up (most of a landing page's date cost).
static std::pair<date::year_month_day, date::hh_mm_ss<seconds>>
local_parts(Micros t, std::string_view timezone)
{
  const auto* zone = zone_or_null(timezone);
  if (zone == nullptr) {
    zone = date::locate_zone("UTC");
  }
  const auto local = zone->to_local(to_sys(t));
  const auto day = date::floor<date::days>(local);
  return {date::year_month_day(day), date::hh_mm_ss<seconds>(local - day)};
}

std::string format_human(Micros t, std::string_view timezone)
{
  const auto [ymd, hms] = local_parts(t, timezone);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%02u/%02u/%04d - %02d:%02d:%02d", unsigned(ymd.day()),
                unsigned(ymd.month()), int(ymd.year()), int(hms.hours().count()),
                int(hms.minutes().count()), int(hms.seconds().count()));
  return buf;
}

std::string format_human_short(Micros t, std::string_view timezone)
{
  const auto [ymd, hms] = local_parts(t, timezone);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02u/%02u/%04d %02d:%02d", unsigned(ymd.day()),
                unsigned(ymd.month()), int(ymd.year()), int(hms.hours().count()),
                int(hms.minutes().count()));
  return buf;
}

std::string format_rfc5322(Micros t)
{
  return date::format("%a, %d %b %Y %H:%M:%S +0000", to_sys(t));
}

std::optional<Micros> parse_local(std::string_view text, std::string_view timezone)
{
  const auto* zone = zone_or_null(timezone);
  if (zone == nullptr) {
    return std::nullopt;
  }
  for (const char* fmt : {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"}) {
    std::istringstream in{std::string(text)};
    date::local_seconds local;
    in >> date::parse(fmt, local);
    if (!in.fail() && in.peek() == std::char_traits<char>::eof()) {
      try {
        auto sys = zone->to_sys(local, date::choose::earliest);
        return std::chrono::duration_cast<microseconds>(sys.time_since_epoch()).count();
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

} // namespace pli::util
