// Short automatic mails of pli-linkd: the one that tells a buyer (the message's sender) that a
// recipient replied through pli-linkd: who replied, to what, and a personal link to the reply (RFC
// 5322, one text/plain UTF-8 part, base64). It never carries the reply itself.
#pragma once

#include "core/model/model.hpp"
#include "core/util/time.hpp"

#include <string>

namespace pli::linkd {

struct ReplyNoticeInput
{
  model::Locale locale = model::Locale::fr;
  std::string timezone = "Europe/Paris";
  std::string organisation;
  std::string from_address; // the notice's From (the bounce address)
  std::string to;           // the buyer
  std::string replier;      // the recipient who replied
  std::string subject;      // of the original message
  util::Micros sent_at = 0; // of the original message
  std::string link;
  util::Micros expires_at = 0;
  util::Micros now = 0;
  std::string message_id; // without <>
};

// The complete message, CRLF line endings. Throws std::runtime_error if a template is
// missing.
std::string compose_reply_notice(const ReplyNoticeInput& in);

// A short automatic mail from the organisation (one text/plain UTF-8 part, base64,
// `Auto-Submitted: auto-generated`), CRLF line endings. Header values from `to` and
// `subject` are kept on one line.
struct PlainMail
{
  model::Locale locale = model::Locale::fr;
  std::string organisation; // display name of From
  std::string from_address;
  std::string to;
  std::string subject;
  std::string text;
  util::Micros now = 0;
  std::string message_id; // without <>
};
std::string compose_plain_mail(const PlainMail& m);

} // namespace pli::linkd
