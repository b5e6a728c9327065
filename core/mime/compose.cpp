#include "core/mime/compose.hpp"

#include "core/templates/template.hpp"

namespace pli::mime {

std::string compose_notice(const NoticeInput& in)
{
  const std::string lang = in.locale == model::Locale::en ? "en" : "fr";
  templates::Map ctx{
      {"organisation", in.organisation},
      {"sender", in.sender_display},
      {"type_label", std::string(model::label(in.type, in.locale))},
      {"subject", in.subject},
      {"link", in.link},
      {"expires", util::format_human_short(in.expires_at, in.timezone)},
      {"reply_allowed", in.reply_allowed},
  };
  if (in.consultation) {
    templates::Map c{{"reference", in.consultation->reference}};
    if (!in.consultation->title.empty()) {
      c["title"] = in.consultation->title;
    }
    if (!in.consultation->object.empty()) {
      c["object"] = in.consultation->object;
    }
    if (!in.consultation->deadline.empty()) {
      c["deadline"] = in.consultation->deadline;
    }
    ctx["consultation"] = c;
  }
  OutgoingMail m;
  m.from_header = in.from_header_raw;
  m.to = in.recipient;
  m.subject = in.subject;
  m.date = in.now;
  m.message_id = in.message_id;
  m.language = lang;
  m.layout = Layout::alternative;
  m.text = templates::render_file("notice." + lang + ".txt", ctx);
  m.html = templates::render_file("notice." + lang + ".html", ctx);
  return build(m);
}

} // namespace pli::mime
