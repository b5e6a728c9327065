// The logging facade: syslog, mail facility, one line per event, starting with the
// Postfix queue id (or "-"), then key=value pairs. Untrusted text is escaped
// (quotes, backslashes, control characters); message content is never logged.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pli::log {

enum class Level
{
  debug,
  info,
  notice,
  warning,
  error
};

// Opens syslog as `ident` on the mail facility; `to_stderr` also copies each line to
// standard error (foreground mode and tests).
void open(const char* ident, bool to_stderr);

using Field = std::pair<std::string_view, std::string_view>;

// Writes "QUEUEID: k=v k2=v2": values with spaces or specials are quoted and escaped.
void line(Level level, std::string_view queue_id, std::initializer_list<Field> fields);
// A free-form line (start-up, shutdown, configuration).
void message(Level level, std::string_view text);

// Escapes a value for a log line (exposed for tests).
std::string escape(std::string_view value);

} // namespace pli::log
