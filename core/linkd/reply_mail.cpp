#include "core/linkd/reply_mail.hpp"

#include "core/mime/compose.hpp"
#include "core/templates/templates.hpp"

#include <mstch/mstch.hpp>

#include <stdexcept>

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
  const std::string name = en ? "reply_notice.en.txt" : "reply_notice.fr.txt";
  std::string_view t = templates::get(name);
  if (t.empty()) {
    throw std::runtime_error("missing template " + name);
  }
  mstch::map ctx{{"from", in.replier},
                 {"subject", in.subject},
                 {"sent_at", util::format_human(in.sent_at, in.timezone)},
                 {"link", in.link},
                 {"expires", util::format_human_short(in.expires_at, in.timezone)},
                 {"organisation", in.organisation}};
  const std::string text = mstch::render(std::string(t), ctx);
  PlainMail m;
  m.locale = in.locale;
  m.organisation = in.organisation;
  m.from_address = in.from_address;
  m.to = in.to;
  m.subject = (en ? "Reply from " : "Réponse de ") + in.replier + (en ? ": " : " : ") + in.subject;
  m.text = text;
  m.now = in.now;
  m.message_id = in.message_id;
  return compose_plain_mail(m);
}

std::string compose_plain_mail(const PlainMail& in)
{
  const bool en = in.locale == model::Locale::en;
  std::string m;
  m += "From: " + mime::mailbox(one_line(in.organisation), in.from_address) + "\r\n";
  m += "To: <" + one_line(in.to) + ">\r\n";
  m += "Subject: " + mime::encode_header(one_line(in.subject)) + "\r\n";
  m += "Date: " + util::format_rfc5322(in.now) + "\r\n";
  m += "Message-ID: <" + in.message_id + ">\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += std::string("Content-Language: ") + (en ? "en" : "fr") + "\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n";
  m += "Content-Transfer-Encoding: base64\r\n\r\n";
  m += mime::base64_lines(in.text);
  return m;
}

} // namespace pli::linkd
