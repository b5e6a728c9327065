#include "core/mime/compose.hpp"

#include "core/mime/parse.hpp"

#include "core/templates/templates.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"
#include "core/util/gobject_ptr.hpp"

#include <gmime/gmime.h>
#include <mstch/mstch.hpp>

#include <stdexcept>

namespace pli::mime {

namespace {

// Headers on the wire use CRLF; GMime writes folded headers with LF.
std::string lf_to_crlf(std::string_view text)
{
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (c == '\n') {
      out += "\r\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

} // namespace

std::string mailbox(const std::string& display, const std::string& address)
{
  std::string name;
  for (char c : display) {
    name.push_back(c == '\r' || c == '\n' || c == '\t' ? ' ' : c); // one line
  }
  if (name.empty()) {
    return "<" + address + ">";
  }
  init();
  const auto ia = util::adopt_gobject(internet_address_mailbox_new(name.c_str(), address.c_str()));
  const util::GCharPtr text(internet_address_to_string(ia.get(), nullptr, TRUE));
  std::string out = text == nullptr ? "<" + address + ">" : std::string(text.get());
  return lf_to_crlf(out); // GMime may fold long encoded names with LF
}

// The buyer's From header for the notice. A client may have written it with raw 8-bit text
// (a display name in UTF-8 or Latin-1): re-written by GMime with RFC 2047 encoded words, so
// that the notice needs SMTPUTF8 only when an address itself is internationalised (a raw
// 8-bit header would make Postfix require SMTPUTF8 of the recipient's server, and bounce
// the notice with 5.6.7 where it is not offered).
namespace {

std::string ascii_from_header(const std::string& raw)
{
  bool ascii = true;
  for (unsigned char c : raw) {
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    return raw;
  }
  init();
  const auto list = util::adopt_gobject(internet_address_list_parse(nullptr, raw.c_str()));
  if (list == nullptr) {
    return raw;
  }
  std::string out = raw;
  if (internet_address_list_length(list.get()) > 0) {
    const util::GCharPtr text(internet_address_list_to_string(list.get(), nullptr, TRUE));
    if (text != nullptr) {
      out = lf_to_crlf(text.get()); // GMime folds with LF
    }
  }
  return out;
}

} // namespace

std::string encode_header(const std::string& utf8)
{
  bool ascii = true;
  for (unsigned char c : utf8) {
    if (c >= 0x80 || c == '\r' || c == '\n') {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    return utf8;
  }
  const util::GCharPtr encoded(g_mime_utils_header_encode_text(nullptr, utf8.c_str(), "utf-8"));
  if (encoded == nullptr) {
    return util::base64(utf8);
  }
  std::string out(encoded.get());
  return lf_to_crlf(out); // GMime folds with LF
}

std::string base64_lines(const std::string& data)
{
  std::string b = util::base64(data);
  std::string out;
  out.reserve(b.size() + b.size() / 76 * 2 + 2);
  for (std::size_t i = 0; i < b.size(); i += 76) {
    out.append(b, i, 76);
    out += "\r\n";
  }
  return out;
}

static std::string render(const std::string& name, const mstch::map& context)
{
  std::string_view t = templates::get(name);
  if (t.empty()) {
    throw std::runtime_error("missing template " + name);
  }
  return mstch::render(std::string(t), context);
}

std::string compose_notice(const NoticeInput& in)
{
  const std::string lang = in.locale == model::Locale::en ? "en" : "fr";
  mstch::map ctx{
      {"organisation", in.organisation},
      {"sender", in.sender_display},
      {"type_label", std::string(model::label(in.type, in.locale))},
      {"subject", in.subject},
      {"link", in.link},
      {"expires", util::format_human_short(in.expires_at, in.timezone)},
      {"reply_allowed", in.reply_allowed},
  };
  if (in.consultation) {
    mstch::map c{{"reference", in.consultation->reference}};
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
  std::string text = render("notice." + lang + ".txt", ctx);
  std::string html = render("notice." + lang + ".html", ctx);

  const std::string boundary = "=_pli_" + util::hex_encode(util::random_bytes(12));
  std::string m;
  m += "From: " + ascii_from_header(in.from_header_raw) + "\r\n";
  m += "To: <" + in.recipient + ">\r\n";
  m += "Subject: " + encode_header(in.subject) + "\r\n";
  m += "Date: " + util::format_rfc5322(in.now) + "\r\n";
  m += "Message-ID: <" + in.message_id + ">\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Language: " + lang + "\r\n";
  m += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n";
  m += "\r\n";
  m += "--" + boundary + "\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n";
  m += "Content-Transfer-Encoding: base64\r\n\r\n";
  m += base64_lines(text);
  m += "--" + boundary + "\r\n";
  m += "Content-Type: text/html; charset=utf-8\r\n";
  m += "Content-Transfer-Encoding: base64\r\n\r\n";
  m += base64_lines(html);
  m += "--" + boundary + "--\r\n";
  return m;
}

} // namespace pli::mime
