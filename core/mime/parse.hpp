// Reading a buyer's message with GMime: headers, text and HTML bodies, attachments.
//
// The message is only read, never re-serialised (GMime 3.2.13 is not byte-exact).
// Handles RFC 2045-2049 structure, RFC 2047 encoded words (with a workaround for the
// 3.2.13 bug that drops adjacent base64 words), RFC 2231 parameters, nested
// multiparts, message/rfc822, odd or missing charsets (text is always returned as
// valid UTF-8), and hostile file names (sanitised).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pli::mime {

struct Attachment
{
  std::string name;        // decoded, sanitised, valid UTF-8, unique within the message, never empty
  std::string media_type;  // lower-case "type/subtype"
  std::string content_id;  // without <>, may be empty (inline images)
  std::string data;        // decoded bytes (base64/QP/uuencode undone)
  std::string sha256_hex;  // of data, lower-case hex
};

struct ParsedMessage
{
  bool parsed = false;          // false when GMime could not build a message at all
  std::string subject;          // decoded, valid UTF-8
  std::string message_id;       // without <>, may be empty
  std::string from;             // decoded display form, e.g. "Alice <alice@example.org>"
  std::string date;             // the Date header as written
  std::string text_body;        // valid UTF-8; may be empty
  std::string html_body;        // valid UTF-8; may be empty
  std::vector<Attachment> attachments;
  std::vector<std::string> warnings; // GMime parser warnings worth a log line (CRIT_* codes)
};

struct Limits
{
  std::size_t max_depth = 32;
  std::size_t max_attachments = 200;
  std::size_t max_name_bytes = 200;
};

// Parses raw message bytes. Never throws on bad input; returns parsed=false when
// the bytes are not a message. Requires init() to have been called once.
ParsedMessage parse_message(std::string_view raw, const Limits& limits = {});

// Decodes an RFC 2047 header value to UTF-8 (workaround for GMime 3.2.13 bug #133 included).
std::string decode_header_value(std::string_view raw);

// Calls g_mime_init() once per process (thread-safe).
void init();

} // namespace pli::mime
