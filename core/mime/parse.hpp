// Reading a buyer's message with GMime: headers, text and HTML bodies, attachments.
//
// The message is only read, never re-serialised (GMime 3.2.13 is not byte-exact).
// The one exception is the bytes of a forwarded message/rfc822 attachment, which GMime
// has already parsed into a message: they are written back by GMime (see parse.cpp).
// Handles RFC 2045-2049 structure, RFC 2047 encoded words (with a workaround for the
// 3.2.13 bug that drops adjacent base64 words), RFC 2231 parameters, nested
// multiparts, message/rfc822, odd or missing charsets (text is always returned as
// valid UTF-8), and hostile file names (sanitised).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pli::mime {

// One attachment: a leaf part that is not the chosen text or HTML body (disposition
// attachment, a named part, an inline image, a second text part, ...), or a forwarded
// message/rfc822 kept whole (named from its Subject + ".eml" unless it declares a name;
// its own parts are not listed separately).
struct Attachment
{
  std::string name;       // decoded, sanitised, valid UTF-8, unique within the message, never empty
  std::string media_type; // lower-case "type/subtype"
  std::string content_id; // without <>, may be empty (inline images)
  std::string data;       // decoded bytes (base64/QP/uuencode undone)
  std::string sha256_hex; // of data, lower-case hex
};

struct ParsedMessage
{
  bool parsed = false;    // false when GMime could not build a message at all
  std::string subject;    // decoded, valid UTF-8
  std::string message_id; // without <>, may be empty
  std::string from;       // decoded display form, e.g. "Alice <alice@example.org>"
  std::string date;       // the Date header as written
  std::string text_body;  // valid UTF-8; may be empty
  std::string html_body;  // valid UTF-8; may be empty
  std::vector<Attachment> attachments;
  // Short codes worth a log line, each once, in order of first occurrence: GMime's
  // CRIT_* parser warnings ("CRIT_INVALID_HEADER_NAME", ...) and pli's own:
  // "charset_fallback" (a text body had bytes outside its charset, read as
  // windows-1252), "multipart_without_parts" (content may hide in a preamble),
  // "max_depth", "max_attachments".
  std::vector<std::string> warnings;
  bool depth_limited = false;             // a multipart deeper than Limits::max_depth was skipped
  std::size_t attachments_over_limit = 0; // attachments not returned (Limits::max_attachments)
};

// Bounds on one message. Exceeding one is reported (depth_limited,
// attachments_over_limit and a warning code), never silent.
struct Limits
{
  std::size_t max_depth = 32;
  std::size_t max_attachments = 200;
  std::size_t max_name_bytes = 200;
};

// Parses raw message bytes (the message is only read, and the bytes are copied: `raw`
// need not outlive the call). Never throws on bad input; returns parsed=false when the
// bytes are not a message (empty input, no header at the start). May throw
// std::bad_alloc. Requires init() (calls it if needed).
//
// Bodies: text_body is the first text/plain and html_body the first text/html leaf
// whose disposition is not "attachment", taken from the first multipart/alternative
// that offers one when there is such a branch. The other plain/HTML alternatives of
// that branch are neither bodies nor attachments; in any other multipart/alternative
// only the last (preferred, RFC 2046) text alternative becomes an attachment.
ParsedMessage parse_message(std::string_view raw, const Limits& limits = {});

// Decodes a raw (possibly folded) header value with RFC 2047 encoded words to valid
// UTF-8, trimmed (workaround for GMime 3.2.13 bug #133 included; raw 8-bit bytes are
// read as UTF-8, else windows-1252). Never throws on bad input.
std::string decode_header_value(std::string_view raw);

// Calls g_mime_init() once per process (thread-safe); never calls g_mime_shutdown().
void init();

} // namespace pli::mime
