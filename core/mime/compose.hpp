// Writing the mail pli sends: the notice (mode AR) and the helpers to build RFC 5322
// messages (RFC 2047 encoded headers, base64 UTF-8 parts, multipart/alternative).
#pragma once

#include "core/model/model.hpp"
#include "core/util/time.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pli::mime {

struct ConsultationInfo
{
  std::string reference;
  std::string title;
  std::string object;
  std::string deadline; // already formatted for people, may be empty
};

struct NoticeInput
{
  model::Locale locale = model::Locale::fr;
  std::string timezone = "Europe/Paris";
  std::string organisation;
  std::string from_header_raw; // the buyer's From header as it was written (already encoded)
  std::string sender_display;  // decoded, for the body
  std::string recipient;
  std::string subject; // decoded, tags removed
  model::MessageType type = model::MessageType::libre;
  std::optional<ConsultationInfo> consultation;
  std::string link;
  util::Micros expires_at = 0;
  util::Micros now = 0;
  std::string message_id; // without <>
  bool reply_allowed = false;
};

// The complete notice, CRLF line endings. Throws std::runtime_error if a template is missing.
std::string compose_notice(const NoticeInput& in);

// RFC 2047 encoding of a header value when it is not plain ASCII (GMime).
std::string encode_header(const std::string& utf8);
// A mailbox for an address header, as GMime writes it (RFC 5322 section 3.4): the display
// name `display` (UTF-8) as an atom sequence, a quoted-string when it holds specials such as
// ',' or '"', or RFC 2047 encoded words when it is not ASCII; then "<address>". An empty
// display name gives "<address>". Never fails.
std::string mailbox(const std::string& display, const std::string& address);
// base64 of `data` in lines of 76 characters, CRLF-terminated.
std::string base64_lines(const std::string& data);
// Renders a template of core/templates with mstch; `context` is an mstch::map.
// (Declared in render.hpp to keep mstch out of this header.)

} // namespace pli::mime
