// The notice (mode AR): the mail a recipient receives in place of a registered message,
// rendered from core/templates (notice.LANG.txt and .html) and built by core/mime/builder.hpp
// (multipart/alternative, the buyer's From re-encoded when it holds raw 8-bit text).
#pragma once

#include "core/mime/builder.hpp"
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

} // namespace pli::mime
