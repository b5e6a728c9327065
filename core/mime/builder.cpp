#include "core/mime/builder.hpp"

#include "core/mime/parse.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"
#include "core/util/gobject_ptr.hpp"

#include <gmime/gmime.h>

#include <memory>
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

// A header value written by the builder itself: no CR or LF can start a new header.
std::string one_line(std::string_view s)
{
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    out.push_back(c == '\r' || c == '\n' || c == '\t' ? ' ' : c);
  }
  return out;
}

bool is_ascii(std::string_view s)
{
  for (unsigned char c : s) {
    if (c >= 0x80) {
      return false;
    }
  }
  return true;
}

using GChars = util::GCharPtr;
template <class T> using GOwned = util::GObjectPtr<T>;

// A file name that can be written as a quoted-string parameter as it is.
bool plain_filename(std::string_view name)
{
  for (unsigned char c : name) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      return false;
    }
  }
  return !name.empty();
}

// GMime's encoding of a structured value (" type; params\n"), as "Name: type; params".
std::string gmime_structured(const char* name, char* encoded)
{
  GChars owned(encoded);
  std::string v = encoded == nullptr ? std::string() : std::string(encoded);
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) {
    v.pop_back();
  }
  return std::string(name) + ":" + lf_to_crlf(v);
}

std::string attachment_headers(const MailAttachment& a)
{
  if (plain_filename(a.filename)) {
    return "Content-Type: " + one_line(a.content_type) + "; name=\"" + a.filename +
           "\"\r\nContent-Disposition: attachment; filename=\"" + a.filename + "\"\r\n";
  }
  // RFC 2231 parameters, by GMime.
  const std::string name = one_line(a.filename);
  GOwned<GMimeContentType> ct(g_mime_content_type_parse(nullptr, one_line(a.content_type).c_str()));
  g_mime_content_type_set_parameter(ct.get(), "name", name.c_str());
  GOwned<GMimeContentDisposition> cd(g_mime_content_disposition_parse(nullptr, "attachment"));
  g_mime_content_disposition_set_parameter(cd.get(), "filename", name.c_str());
  return gmime_structured("Content-Type", g_mime_content_type_encode(ct.get(), nullptr)) + "\r\n" +
         gmime_structured("Content-Disposition",
                          g_mime_content_disposition_encode(cd.get(), nullptr)) +
         "\r\n";
}

} // namespace

std::string mailbox(const std::string& display, const std::string& address)
{
  const std::string name = one_line(display);
  if (name.empty()) {
    return "<" + address + ">";
  }
  init();
  GOwned<InternetAddress> ia(internet_address_mailbox_new(name.c_str(), address.c_str()));
  GChars text(internet_address_to_string(ia.get(), nullptr, TRUE));
  if (text == nullptr) {
    return "<" + address + ">";
  }
  return lf_to_crlf(text.get()); // GMime may fold long encoded names with LF
}

// A client may have written the buyer's From with raw 8-bit text (a display name in UTF-8 or
// Latin-1): re-written by GMime with RFC 2047 encoded words, so that the notice needs
// SMTPUTF8 only when an address itself is internationalised (a raw 8-bit header would make
// Postfix require SMTPUTF8 of the recipient's server, and bounce the notice with 5.6.7 where
// it is not offered).
std::string ascii_address_header(const std::string& raw)
{
  if (is_ascii(raw)) {
    return raw;
  }
  init();
  GOwned<InternetAddressList> list(internet_address_list_parse(nullptr, raw.c_str()));
  if (list == nullptr || internet_address_list_length(list.get()) <= 0) {
    return raw;
  }
  GChars text(internet_address_list_to_string(list.get(), nullptr, TRUE));
  return text == nullptr ? raw : lf_to_crlf(text.get()); // GMime folds with LF
}

std::string encode_header(const std::string& utf8)
{
  bool plain = true;
  for (unsigned char c : utf8) {
    if (c >= 0x80 || c == '\r' || c == '\n') {
      plain = false;
      break;
    }
  }
  if (plain) {
    return utf8;
  }
  init();
  GChars encoded(g_mime_utils_header_encode_text(nullptr, utf8.c_str(), "utf-8"));
  if (encoded == nullptr) {
    return util::base64(utf8);
  }
  return lf_to_crlf(encoded.get()); // GMime folds with LF
}

std::string fold_header(const std::string& name, const std::string& value)
{
  std::string line = name + ": " + value;
  if (line.size() <= 78) {
    return line;
  }
  init();
  GChars folded(g_mime_utils_unstructured_header_fold(nullptr, nullptr, line.c_str()));
  if (folded == nullptr) {
    return line;
  }
  std::string out(folded.get());
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
    out.pop_back();
  }
  return lf_to_crlf(out);
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

std::string build(const OutgoingMail& in)
{
  if (!in.html.empty() && in.layout != Layout::alternative) {
    throw std::invalid_argument("mail builder: an HTML part needs Layout::alternative");
  }
  if (!in.attachments.empty() && in.layout != Layout::mixed) {
    throw std::invalid_argument("mail builder: attachments need Layout::mixed");
  }
  std::string m;
  m += "From: " +
       (in.from_address.empty() ? ascii_address_header(in.from_header)
                                : mailbox(in.from_display, in.from_address)) +
       "\r\n";
  m += "To: <" + one_line(in.to) + ">\r\n";
  m += fold_header("Subject", encode_header(in.subject)) + "\r\n";
  m += "Date: " + util::format_rfc5322(in.date) + "\r\n";
  m += "Message-ID: <" + one_line(in.message_id) + ">\r\n";
  for (const auto& [name, value] : in.extra_headers) {
    m += one_line(name) + ": " + one_line(value) + "\r\n";
  }
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Language: " + one_line(in.language) + "\r\n";
  const auto text_part = [](const char* subtype, const std::string& text) {
    return std::string("Content-Type: text/") + subtype +
           "; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64_lines(text);
  };
  if (in.layout == Layout::text) {
    m += text_part("plain", in.text);
    return m;
  }
  const std::string boundary =
      "=_pli_" + in.boundary_tag + util::hex_encode(util::random_bytes(12));
  const char* kind = in.layout == Layout::alternative ? "alternative" : "mixed";
  m += std::string("Content-Type: multipart/") + kind + "; boundary=\"" + boundary + "\"\r\n\r\n";
  m += "--" + boundary + "\r\n";
  m += text_part("plain", in.text);
  if (in.layout == Layout::alternative) {
    m += "--" + boundary + "\r\n";
    m += text_part("html", in.html);
  }
  for (const MailAttachment& a : in.attachments) {
    m += "--" + boundary + "\r\n";
    m += attachment_headers(a);
    m += "Content-Transfer-Encoding: base64\r\n\r\n";
    m += base64_lines(a.data);
  }
  m += "--" + boundary + "--\r\n";
  return m;
}

} // namespace pli::mime
