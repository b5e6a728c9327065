#include "core/linkd/reply_mail.hpp"

#include "core/mime/builder.hpp"
#include "core/templates/template.hpp"

namespace pli::linkd {

namespace {

// A header value from untrusted text: no CR/LF can start a new header.
std::string one_line(const std::string& s)
{
  std::string out;
  for (char c : s) {
    out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  }
  return out;
}

} // namespace

std::string compose_reply_notice(const ReplyNoticeInput& in)
{
  const bool en = in.locale == model::Locale::en;
  const templates::Map ctx{{"from", in.replier},
                           {"subject", in.subject},
                           {"sent_at", util::format_human(in.sent_at, in.timezone)},
                           {"link", in.link},
                           {"expires", util::format_human_short(in.expires_at, in.timezone)},
                           {"organisation", in.organisation}};
  PlainMail m;
  m.locale = in.locale;
  m.organisation = in.organisation;
  m.from_address = in.from_address;
  m.to = in.to;
  m.subject = (en ? "Reply from " : "Réponse de ") + in.replier + (en ? ": " : " : ") + in.subject;
  m.text = templates::render_file(en ? "reply_notice.en.txt" : "reply_notice.fr.txt", ctx);
  m.now = in.now;
  m.message_id = in.message_id;
  return compose_plain_mail(m);
}

std::string compose_plain_mail(const PlainMail& in)
{
  mime::OutgoingMail m;
  m.from_display = in.organisation;
  m.from_address = in.from_address;
  m.to = in.to;
  m.subject = one_line(in.subject);
  m.date = in.now;
  m.message_id = in.message_id;
  m.extra_headers.emplace_back("Auto-Submitted", "auto-generated");
  m.language = in.locale == model::Locale::en ? "en" : "fr";
  m.layout = mime::Layout::text;
  m.text = in.text;
  return mime::build(m);
}

} // namespace pli::linkd
