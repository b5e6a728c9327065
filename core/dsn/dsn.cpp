// Reading bounces: RFC 3464 (RFC 6533 for UTF-8) delivery status notifications found
// with GMime, and non-standard bounces classified from their text.
//
// The MIME structure comes from GMime (RFC 2045-2049, RFC 6522 multipart/report). The
// delivery-status parts are chosen in this order: direct
// children of a multipart/report, then any part not inside a message/rfc822, then
// nested ones; the first that names a recipient wins. Its decoded content is read by
// hand (fields.cpp). Without one, the first text part of the notice is classified
// (text_classify.cpp). ARF feedback reports (RFC 5965), MDNs (RFC 8098) and auto-replies
// (RFC 3834) are not bounces.
#include "core/dsn/dsn.hpp"

#include "core/dsn/detail.hpp"
#include "core/mime/charset.hpp"
#include "core/mime/parse.hpp"
#include "core/mime/rfc2047.hpp"
#include "core/util/encoding.hpp"
#include "core/util/gobject_ptr.hpp"
#include "core/util/text.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace pli::dsn {

namespace {

using util::adopt_gobject;

constexpr int k_max_depth = 32;
// The most MIME parts of a report that are looked at: a report has a handful.
constexpr int k_max_parts = 256;

enum class Nesting
{
  outside_message,
  inside_message
};

struct Candidate
{
  GMimePart* part = nullptr;
  int tier = 0; // 0: child of multipart/report; 1: not inside message/rfc822; 2: nested
};

struct Walk
{
  std::vector<Candidate> candidates;
  GMimePart* first_text = nullptr; // first text/plain leaf outside message/rfc822
  GMimePart* first_html = nullptr; // first text/html leaf outside message/rfc822
  std::string prologue_text;       // prologue of a multipart without parts (broken boundary)
  bool feedback_report = false;    // message/feedback-report or an MDN outside message/rfc822
  int parts = 0;                   // parts visited, at most k_max_parts
};

std::string lower(std::string_view s)
{
  return util::ascii_lower(s);
}

bool is_type(GMimeObject* obj, const char* type, const char* subtype)
{
  GMimeContentType* ct = g_mime_object_get_content_type(obj);
  return ct != nullptr && g_mime_content_type_is_type(ct, type, subtype) != FALSE;
}

void walk(GMimeObject* obj, GMimeObject* parent, Nesting nesting, int depth, Walk& w)
{
  if (obj == nullptr || depth > k_max_depth || ++w.parts > k_max_parts) {
    return;
  }
  bool outside = nesting == Nesting::outside_message;
  if (GMIME_IS_MESSAGE_PART(obj)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    if (inner != nullptr) {
      walk(g_mime_message_get_mime_part(inner), nullptr, Nesting::inside_message, depth + 1, w);
    }
    return;
  }
  if (GMIME_IS_MULTIPART(obj)) {
    GMimeMultipart* mp = GMIME_MULTIPART(obj);
    int n = g_mime_multipart_get_count(mp);
    if (n == 0 && outside && w.prologue_text.empty()) {
      const char* prologue = g_mime_multipart_get_prologue(mp);
      w.prologue_text = prologue != nullptr ? prologue : "";
    }
    for (int i = 0; i < n; ++i) {
      walk(g_mime_multipart_get_part(mp, i), obj, nesting, depth + 1, w);
    }
    return;
  }
  if (!GMIME_IS_PART(obj)) {
    return;
  }
  if (is_type(obj, "message", "delivery-status") ||
      is_type(obj, "message", "global-delivery-status")) {
    int tier = 2;
    if (outside) {
      tier = (parent != nullptr && is_type(parent, "multipart", "report")) ? 0 : 1;
    }
    w.candidates.push_back(Candidate{GMIME_PART(obj), tier});
    return;
  }
  if (!outside) {
    return;
  }
  if (is_type(obj, "message", "feedback-report") ||
      is_type(obj, "message", "disposition-notification") ||
      is_type(obj, "message", "global-disposition-notification")) {
    w.feedback_report = true;
  } else if (is_type(obj, "text", "plain") && w.first_text == nullptr &&
             !g_mime_part_is_attachment(GMIME_PART(obj))) {
    w.first_text = GMIME_PART(obj);
  } else if (is_type(obj, "text", "html") && w.first_html == nullptr &&
             !g_mime_part_is_attachment(GMIME_PART(obj))) {
    w.first_html = GMIME_PART(obj);
  }
}

// The decoded bytes of a part (base64/QP undone); empty when it has no content.
std::string decoded_content(GMimePart* part)
{
  GMimeDataWrapper* dw = g_mime_part_get_content(part);
  if (dw == nullptr) {
    return {};
  }
  auto mem = adopt_gobject(g_mime_stream_mem_new());
  if (!mem || g_mime_data_wrapper_write_to_stream(dw, mem.get()) < 0) {
    return {};
  }
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
  if (bytes == nullptr || bytes->len == 0) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

// A text part as valid UTF-8 (declared charset honoured, bad bytes read as windows-1252).
std::string part_text(GMimePart* part)
{
  std::string raw = decoded_content(part);
  const char* charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
  return mime::to_utf8(raw, charset != nullptr ? charset : "");
}

bool looks_like_html(std::string_view text)
{
  std::string head = lower(std::string(text.substr(0, 4096)));
  for (const char* tag : {"<html", "<body", "<br", "<p>", "<p ", "<div", "<table", "<!doctype"}) {
    if (head.find(tag) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// Crude tag removal for HTML-only notices: tags become spaces, a few entities decoded.
std::string strip_html(std::string_view html)
{
  std::string out;
  out.reserve(html.size());
  bool in_tag = false;
  for (std::size_t i = 0; i < html.size(); ++i) {
    char c = html[i];
    if (in_tag) {
      if (c == '>') {
        in_tag = false;
        out.push_back(' ');
      }
      continue;
    }
    if (c == '<') {
      std::string_view rest = html.substr(i + 1, 4);
      bool breaks = rest.starts_with("br") || rest.starts_with("BR") || rest.starts_with("p") ||
                    rest.starts_with("P") || rest.starts_with("/p") || rest.starts_with("div") ||
                    rest.starts_with("/div") || rest.starts_with("tr") || rest.starts_with("/tr");
      if (breaks) {
        out.push_back('\n');
      }
      in_tag = true;
      continue;
    }
    out.push_back(c);
  }
  for (auto [entity, repl] :
       {std::pair{"&nbsp;", " "}, std::pair{"&lt;", "<"}, std::pair{"&gt;", ">"},
        std::pair{"&quot;", "\""}, std::pair{"&#39;", "'"}, std::pair{"&amp;", "&"}}) {
    std::string_view e(entity);
    for (std::size_t p = out.find(e); p != std::string::npos; p = out.find(e, p + 1)) {
      out.replace(p, e.size(), repl);
    }
  }
  return out;
}

// The first value of a header of `obj`, raw (not RFC 2047-decoded) and unfolded.
std::string raw_header(GMimeObject* obj, const char* name)
{
  GMimeHeaderList* list = g_mime_object_get_header_list(obj);
  if (list == nullptr) {
    return {};
  }
  GMimeHeader* h = g_mime_header_list_get_header(list, name);
  if (h == nullptr) {
    return {};
  }
  const char* raw = g_mime_header_get_raw_value(h);
  if (raw == nullptr) {
    return {};
  }
  return mime::unfold_header_value(raw);
}

// Header text for display: controls (an encoded word may hold a newline) become spaces.
std::string one_line(std::string s)
{
  for (char& c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 32 || u == 127) {
      c = ' ';
    }
  }
  std::size_t b = s.find_first_not_of(' ');
  std::size_t e = s.find_last_not_of(' ');
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

bool headers_say_auto_reply(GMimeObject* top, std::string_view subject)
{
  std::string auto_submitted = lower(raw_header(top, "Auto-Submitted"));
  if (auto_submitted.starts_with("auto-replied")) {
    return true;
  }
  for (const char* name : {"X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autoresponder"}) {
    std::string v = lower(raw_header(top, name));
    if (!v.empty() && v != "no" && v != "false" && v != "0") {
      return true;
    }
  }
  std::string precedence = lower(raw_header(top, "Precedence"));
  if (precedence == "auto_reply" || precedence == "auto-reply") {
    return true;
  }
  if (lower(raw_header(top, "X-Apple-Action")) == "vacation") {
    return true;
  }
  return detail::subject_is_auto_reply(subject);
}

std::optional<Report> parse_message(GMimeMessage* message)
{
  GMimeObject* top_obj = GMIME_OBJECT(message);
  GMimeObject* body = g_mime_message_get_mime_part(message);

  Report report;
  std::string raw_subject = raw_header(top_obj, "Subject");
  report.subject = one_line(mime::repair_utf8(mime::decode_header_value(raw_subject)));

  if (body != nullptr && is_type(body, "multipart", "report")) {
    const char* rt = g_mime_object_get_content_type_parameter(body, "report-type");
    std::string report_type = lower(rt != nullptr ? rt : "");
    if (report_type == "feedback-report" || report_type == "disposition-notification") {
      return std::nullopt;
    }
  }

  Walk w;
  walk(body, nullptr, Nesting::outside_message, 0, w);
  std::stable_sort(w.candidates.begin(), w.candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.tier < b.tier; });

  std::optional<detail::DeliveryStatus> per_message;
  for (const Candidate& c : w.candidates) {
    detail::DeliveryStatus ds = detail::parse_delivery_status(decoded_content(c.part));
    if (!ds.recipients.empty()) {
      report.reporting_mta = std::move(ds.reporting_mta);
      report.original_envelope_id = std::move(ds.original_envelope_id);
      report.arrival_date = std::move(ds.arrival_date);
      report.recipients = std::move(ds.recipients);
      return report;
    }
    if (!per_message && ds.has_fields) {
      per_message = std::move(ds);
    }
  }
  if (w.feedback_report) {
    return std::nullopt;
  }

  // No delivery-status part naming a recipient: classify the notice's text.
  std::string text;
  if (w.first_text != nullptr) {
    text = part_text(w.first_text);
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos && w.first_html != nullptr) {
    text = part_text(w.first_html);
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    text = mime::repair_utf8(w.prologue_text);
  }
  if (looks_like_html(text)) {
    text = strip_html(text);
  }
  std::string from = raw_header(top_obj, "From");
  std::string failed_rcpt = raw_header(top_obj, "X-Failed-Recipients");
  detail::TextEvidence ev;
  ev.subject = report.subject;
  ev.from = from;
  ev.text = text;
  ev.failed_rcpt = failed_rcpt;
  ev.auto_reply = headers_say_auto_reply(top_obj, report.subject);
  detail::TextVerdict verdict = detail::classify_text(ev);
  if (verdict.recipients.empty()) {
    return std::nullopt;
  }
  report.inferred = true;
  if (per_message) {
    report.reporting_mta = std::move(per_message->reporting_mta);
    report.original_envelope_id = std::move(per_message->original_envelope_id);
    report.arrival_date = std::move(per_message->arrival_date);
  }
  if (report.reporting_mta.empty()) {
    report.reporting_mta = std::move(verdict.reporting_mta);
  }
  if (report.original_envelope_id.empty()) {
    report.original_envelope_id = std::move(verdict.original_envelope_id);
  }
  if (report.arrival_date.empty()) {
    report.arrival_date = std::move(verdict.arrival_date);
  }
  for (auto& r : verdict.recipients) {
    r.final_recipient = mime::repair_utf8(r.final_recipient);
    r.diagnostic_code = mime::repair_utf8(r.diagnostic_code);
    report.recipients.push_back(std::move(r));
  }
  return report;
}

// Every field of a report as valid UTF-8 on one line (util::clean_line).
void clean_fields(Report& report)
{
  for (std::string* f : {&report.reporting_mta, &report.original_envelope_id, &report.arrival_date,
                         &report.subject}) {
    *f = util::clean_line(*f);
  }
  for (auto& r : report.recipients) {
    for (std::string* f :
         {&r.final_recipient, &r.original_recipient, &r.action_raw, &r.status, &r.remote_mta,
          &r.diagnostic_code, &r.reply_code, &r.last_attempt_date, &r.will_retry_until}) {
      *f = util::clean_line(*f);
    }
  }
}

} // namespace

std::optional<Report> parse_report(std::string_view raw_message)
{
  try {
    if (raw_message.empty()) {
      return std::nullopt;
    }
    mime::init();
    // g_mime_stream_mem_new_with_buffer copies the bytes.
    auto stream =
        adopt_gobject(g_mime_stream_mem_new_with_buffer(raw_message.data(), raw_message.size()));
    if (!stream) {
      return std::nullopt;
    }
    auto parser = adopt_gobject(g_mime_parser_new_with_stream(stream.get()));
    if (!parser) {
      return std::nullopt;
    }
    mime::ParserOptionsPtr options = mime::make_parser_options();
    auto message = adopt_gobject(g_mime_parser_construct_message(parser.get(), options.get()));
    if (!message) {
      return std::nullopt;
    }
    auto report = parse_message(message.get());
    if (report) {
      clean_fields(*report); // text from outside, recorded as evidence and shown
    }
    return report;
  } catch (...) {
    // Only std::bad_alloc can get here; a bounce we cannot read is not a bounce.
    return std::nullopt;
  }
}

std::string_view action_name(Action action)
{
  switch (action) {
  case Action::failed:
    return "failed";
  case Action::delayed:
    return "delayed";
  case Action::delivered:
    return "delivered";
  case Action::relayed:
    return "relayed";
  case Action::expanded:
    return "expanded";
  case Action::unknown:
    break;
  }
  return "unknown";
}

std::string_view event_kind_for(Action action)
{
  switch (action) {
  case Action::delivered:
  case Action::relayed:
  case Action::expanded:
    return "delivered";
  case Action::failed:
    return "failed";
  case Action::delayed:
    return "delayed";
  case Action::unknown:
    break;
  }
  return "";
}

} // namespace pli::dsn
