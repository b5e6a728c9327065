#include "core/log/log.hpp"

#include <sys/stat.h>
#include <syslog.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace pli::log {

namespace {
bool g_stderr = false;

int priority(Level level)
{
  switch (level) {
  case Level::debug:
    return LOG_DEBUG;
  case Level::info:
    return LOG_INFO;
  case Level::notice:
    return LOG_NOTICE;
  case Level::warning:
    return LOG_WARNING;
  case Level::error:
    return LOG_ERR;
  }
  return LOG_INFO;
}

// systemd connects a service's stderr to the journal and says so in JOURNAL_STREAM
// ("device:inode" of that stream). The journal already receives every line through
// syslog, so copying them to stderr there would show each one twice.
bool stderr_is_journal()
{
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st
  {
  };
  if (stream == nullptr || fstat(2, &st) != 0) {
    return false;
  }
  return std::string(stream) == std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}
} // namespace

void open(const char* ident, bool to_stderr)
{
  g_stderr = to_stderr && !stderr_is_journal();
  openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

std::string escape(std::string_view value)
{
  bool plain = !value.empty();
  for (unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c >= 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) {
    return std::string(value);
  }
  std::string out = "\"";
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < ' ' || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c)); // UTF-8 passes through
    }
  }
  out.push_back('"');
  return out;
}

void line(Level level, std::string_view queue_id, std::initializer_list<Field> fields)
{
  std::string text(queue_id.empty() ? std::string_view("-") : queue_id);
  text += ":";
  for (const auto& [k, v] : fields) {
    text += ' ';
    text += k;
    text += '=';
    text += escape(v);
  }
  message(level, text);
}

void message(Level level, std::string_view text)
{
  syslog(priority(level), "%.*s", static_cast<int>(text.size()), text.data());
  if (g_stderr) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(text.size()), text.data());
  }
}

} // namespace pli::log
