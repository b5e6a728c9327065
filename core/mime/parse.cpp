// Reading a message with GMime 3.2.13: headers, bodies and attachments (see parse.hpp).
//
// The tree is walked by our own recursion (g_mime_message_foreach does not enter
// message/rfc822, and our depth limit must apply). A forwarded message is kept whole as
// one attachment and not entered. File names, header values and text bodies all pass
// through the UTF-8 repair of charset.hpp; names through the sanitising of names.hpp.
#include "core/mime/parse.hpp"

#include "core/mime/charset.hpp"
#include "core/mime/names.hpp"
#include "core/mime/rfc2047.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"
#include "core/util/gobject_ptr.hpp"
#include "core/util/text.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <mutex>
#include <optional>

namespace pli::mime {
namespace {

using util::adopt_gobject;
using util::GCharPtr;
using util::GObjectPtr;

struct FormatOptionsFree
{
  void operator()(GMimeFormatOptions* options) const noexcept
  {
    g_mime_format_options_free(options);
  }
};
using FormatOptionsPtr = std::unique_ptr<GMimeFormatOptions, FormatOptionsFree>;

void add_warning(std::vector<std::string>& warnings, std::string_view code)
{
  if (std::find(warnings.begin(), warnings.end(), code) == warnings.end()) {
    warnings.emplace_back(code);
  }
}

const char* crit_warning_name(GMimeParserWarning code)
{
  switch (code) {
  case GMIME_CRIT_INVALID_HEADER_NAME:
    return "CRIT_INVALID_HEADER_NAME";
  case GMIME_CRIT_CONFLICTING_HEADER:
    return "CRIT_CONFLICTING_HEADER";
  case GMIME_CRIT_CONFLICTING_PARAMETER:
    return "CRIT_CONFLICTING_PARAMETER";
  case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
    return "CRIT_MULTIPART_WITHOUT_BOUNDARY";
  case GMIME_CRIT_NESTING_OVERFLOW:
    return "CRIT_NESTING_OVERFLOW";
  case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
    return "CRIT_PART_WITHOUT_HEADERS_OR_CONTENT";
  default:
    return nullptr; // WARN_*: too common to be worth a log line
  }
}

// GMime 3.2.13's 3-argument callback (3.2.14/15 add a GDestroyNotify to the setter).
// The item (a header name, ...) is untrusted text and is not kept.
void on_parser_warning(gint64 /*offset*/, GMimeParserWarning code, const gchar* /*item*/,
                       gpointer user_data)
{
  const char* name = crit_warning_name(code);
  if (name == nullptr) {
    return;
  }
  try {
    add_warning(*static_cast<std::vector<std::string>*>(user_data), name);
  } catch (...) { // nothing may unwind through GMime's C frames
  }
}

std::string stream_bytes(GMimeStream* stream)
{
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
  if (bytes == nullptr || bytes->len == 0) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

// The content with its transfer encoding undone; "" when the part has no content.
std::string decoded_content(GMimePart* part)
{
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr) {
    return {};
  }
  const GObjectPtr<GMimeStream> out = adopt_gobject(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(content, out.get());
  return stream_bytes(out.get());
}

const char* raw_header(GMimeObject* object, const char* name)
{
  GMimeHeaderList* list = g_mime_object_get_header_list(object);
  if (list == nullptr) {
    return nullptr;
  }
  GMimeHeader* header = g_mime_header_list_get_header(list, name);
  return header != nullptr ? g_mime_header_get_raw_value(header) : nullptr;
}

// The raw header value with split base64 words merged, when that changes it (bug #133):
// GMime decoded its parameters wrongly and they must be read again.
std::optional<std::string> header_needing_reparse(GMimeObject* object, const char* name)
{
  const char* raw = raw_header(object, name);
  if (raw == nullptr || std::string_view(raw).find("=?") == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string unfolded = unfold_header_value(raw);
  std::string merged = merge_split_base64_words(unfolded);
  if (merged == unfolded) {
    return std::nullopt;
  }
  return merged;
}

std::optional<std::string> disposition_file_name(GMimeObject* object, GMimeParserOptions* options)
{
  GMimeContentDisposition* disposition = g_mime_object_get_content_disposition(object);
  const char* value = disposition != nullptr
                          ? g_mime_content_disposition_get_parameter(disposition, "filename")
                          : nullptr;
  if (value == nullptr) {
    return std::nullopt;
  }
  if (auto fixed = header_needing_reparse(object, "Content-Disposition")) {
    const auto reparsed = adopt_gobject(g_mime_content_disposition_parse(options, fixed->c_str()));
    const char* v =
        reparsed ? g_mime_content_disposition_get_parameter(reparsed.get(), "filename") : nullptr;
    if (v != nullptr) {
      return std::string(v);
    }
  }
  return std::string(value);
}

std::optional<std::string> content_type_name(GMimeObject* object, GMimeParserOptions* options)
{
  const char* value = g_mime_object_get_content_type_parameter(object, "name");
  if (value == nullptr) {
    return std::nullopt;
  }
  if (auto fixed = header_needing_reparse(object, "Content-Type")) {
    const auto reparsed = adopt_gobject(g_mime_content_type_parse(options, fixed->c_str()));
    const char* v = reparsed ? g_mime_content_type_get_parameter(reparsed.get(), "name") : nullptr;
    if (v != nullptr) {
      return std::string(v);
    }
  }
  return std::string(value);
}

// The name the sender gave (Content-Disposition filename, else Content-Type name),
// decoded (RFC 2231/2047) but not yet validated or sanitised.
std::optional<std::string> declared_file_name(GMimeObject* object, GMimeParserOptions* options)
{
  if (auto name = disposition_file_name(object, options)) {
    return name;
  }
  return content_type_name(object, options);
}

std::string media_type_of(GMimeObject* object)
{
  GMimeContentType* type = g_mime_object_get_content_type(object);
  if (type == nullptr) {
    return "application/octet-stream";
  }
  const GCharPtr mime_type(g_mime_content_type_get_mime_type(type));
  return mime_type ? repair_utf8(util::ascii_lower(mime_type.get())) : "application/octet-stream";
}

bool has_attachment_disposition(GMimeObject* object)
{
  GMimeContentDisposition* disposition = g_mime_object_get_content_disposition(object);
  return disposition != nullptr && g_mime_content_disposition_is_attachment(disposition) != FALSE;
}

std::string strip_angle_brackets(std::string_view id)
{
  id = util::trim(id);
  if (!id.empty() && id.front() == '<') {
    id.remove_prefix(1);
  }
  if (!id.empty() && id.back() == '>') {
    id.remove_suffix(1);
  }
  return std::string(id);
}

std::string decoded_subject(GMimeMessage* message)
{
  const char* raw = raw_header(GMIME_OBJECT(message), "Subject");
  return raw != nullptr ? decode_header_value(raw) : std::string();
}

// "Name <addr>, ..." with display names decoded (the bug #133 workaround applied first).
std::string display_addresses(std::string_view raw, GMimeParserOptions* options)
{
  const std::string fixed = merge_split_base64_words(unfold_header_value(raw));
  const auto list = adopt_gobject(internet_address_list_parse(options, fixed.c_str()));
  if (list && internet_address_list_length(list.get()) > 0) {
    const GCharPtr text(internet_address_list_to_string(list.get(), nullptr, FALSE));
    if (text && *text.get() != '\0') {
      return repair_utf8(text.get());
    }
  }
  return decode_header_value(raw); // not an address list GMime can read: show it as text
}

// The Subject of a message given as bytes (a message/rfc822 part GMime kept as a leaf,
// e.g. because it carries a base64 transfer encoding).
std::string subject_of_raw_message(std::string_view raw, GMimeParserOptions* options)
{
  if (raw.empty()) {
    return {};
  }
  const auto stream = adopt_gobject(g_mime_stream_mem_new_with_buffer(raw.data(), raw.size()));
  const auto parser = adopt_gobject(g_mime_parser_new_with_stream(stream.get()));
  const auto message = adopt_gobject(g_mime_parser_construct_message(parser.get(), options));
  return message ? decoded_subject(message.get()) : std::string();
}

bool is_forwarded_message_type(std::string_view media_type)
{
  return media_type == "message/rfc822" || media_type == "message/global";
}

class MessageReader
{
public:
  MessageReader(const Limits& limits, ParsedMessage& out, GMimeParserOptions* options,
                GMimeFormatOptions* format)
      : m_limits(limits), m_out(out), m_options(options), m_format(format),
        m_names(limits.max_name_bytes)
  {
  }

  void read(GMimeMessage* message)
  {
    read_headers(message);
    if (GMimeObject* top = g_mime_message_get_mime_part(message)) {
      collect(top, 0, -1);
    }
    choose_bodies();
    for (std::size_t i = 0; i < m_leaves.size(); ++i) {
      if (is_attachment(i)) {
        add_attachment(m_leaves[i]);
      }
    }
  }

private:
  struct Leaf
  {
    GMimeObject* object = nullptr; // a GMimePart, or a GMimeMessagePart (forwarded message)
    int alternative = -1;          // the multipart/alternative it is one version of, or -1
    bool is_plain = false;
    bool is_html = false;
    bool body_candidate = false; // text/plain or text/html without disposition attachment
  };

  static constexpr std::size_t k_none = static_cast<std::size_t>(-1);

  void read_headers(GMimeMessage* message)
  {
    GMimeObject* object = GMIME_OBJECT(message);
    m_out.subject = decoded_subject(message);
    if (const char* id = g_mime_message_get_message_id(message)) {
      m_out.message_id = repair_utf8(id);
    } else if (const char* raw = raw_header(object, "Message-ID")) {
      m_out.message_id = repair_utf8(strip_angle_brackets(unfold_header_value(raw)));
    }
    if (const char* raw = raw_header(object, "From")) {
      m_out.from = display_addresses(raw, m_options);
    }
    if (const char* raw = raw_header(object, "Date")) {
      m_out.date = repair_utf8(unfold_header_value(raw));
    }
  }

  // Lists the leaves in document order. `alternative` is inherited by the first child
  // of a multipart (e.g. the HTML root of a multipart/related inside an alternative).
  void collect(GMimeObject* object, std::size_t depth, int alternative)
  {
    if (GMIME_IS_MULTIPART(object)) {
      if (depth >= m_limits.max_depth) {
        m_out.depth_limited = true;
        add_warning(m_out.warnings, "max_depth");
        return;
      }
      GMimeMultipart* multipart = GMIME_MULTIPART(object);
      const int count = g_mime_multipart_get_count(multipart);
      if (count <= 0) {
        add_warning(m_out.warnings, "multipart_without_parts");
        return;
      }
      const bool is_alternative =
          g_mime_content_type_is_type(g_mime_object_get_content_type(object), "multipart",
                                      "alternative") != FALSE;
      const int own = is_alternative ? m_next_alternative++ : -1;
      for (int i = 0; i < count; ++i) {
        if (GMimeObject* child = g_mime_multipart_get_part(multipart, i)) {
          collect(child, depth + 1, is_alternative ? own : (i == 0 ? alternative : -1));
        }
      }
      return;
    }
    Leaf leaf;
    leaf.object = object;
    leaf.alternative = alternative;
    if (GMIME_IS_PART(object)) {
      GMimeContentType* type = g_mime_object_get_content_type(object);
      leaf.is_plain =
          type != nullptr && g_mime_content_type_is_type(type, "text", "plain") != FALSE;
      leaf.is_html = type != nullptr && g_mime_content_type_is_type(type, "text", "html") != FALSE;
      leaf.body_candidate = (leaf.is_plain || leaf.is_html) && !has_attachment_disposition(object);
    } else if (!GMIME_IS_MESSAGE_PART(object)) {
      return; // not a type GMime builds today
    }
    m_leaves.push_back(leaf);
  }

  std::size_t first_candidate(bool html, int alternative, bool any_alternative) const
  {
    for (std::size_t i = 0; i < m_leaves.size(); ++i) {
      const Leaf& l = m_leaves[i];
      if (l.body_candidate && (html ? l.is_html : l.is_plain) &&
          (any_alternative || l.alternative == alternative)) {
        return i;
      }
    }
    return k_none;
  }

  void choose_bodies()
  {
    // The first multipart/alternative that offers a body is preferred.
    for (const Leaf& l : m_leaves) {
      if (l.body_candidate && l.alternative >= 0) {
        m_chosen_alternative = l.alternative;
        break;
      }
    }
    if (m_chosen_alternative >= 0) {
      m_text = first_candidate(false, m_chosen_alternative, false);
      m_html = first_candidate(true, m_chosen_alternative, false);
    }
    if (m_text == k_none) {
      m_text = first_candidate(false, -1, true);
    }
    if (m_html == k_none) {
      m_html = first_candidate(true, -1, true);
    }
    if (m_text != k_none) {
      m_out.text_body = text_of(GMIME_PART(m_leaves[m_text].object));
    }
    if (m_html != k_none) {
      m_out.html_body = text_of(GMIME_PART(m_leaves[m_html].object));
    }
    m_last_candidate.assign(static_cast<std::size_t>(m_next_alternative), k_none);
    for (std::size_t i = 0; i < m_leaves.size(); ++i) {
      if (m_leaves[i].body_candidate && m_leaves[i].alternative >= 0) {
        m_last_candidate[static_cast<std::size_t>(m_leaves[i].alternative)] = i;
      }
    }
  }

  std::string text_of(GMimePart* part)
  {
    const char* charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
    bool fell_back = false;
    std::string text =
        to_utf8(decoded_content(part), charset != nullptr ? charset : "", &fell_back);
    if (fell_back) {
      add_warning(m_out.warnings, "charset_fallback");
    }
    return text;
  }

  bool is_attachment(std::size_t i) const
  {
    if (i == m_text || i == m_html) {
      return false;
    }
    const Leaf& l = m_leaves[i];
    if (l.body_candidate && l.alternative >= 0) {
      if (l.alternative == m_chosen_alternative) {
        return false; // another version of the body
      }
      // Another multipart/alternative: keep its last (preferred) text version only.
      return m_last_candidate[static_cast<std::size_t>(l.alternative)] == i;
    }
    return true;
  }

  void add_attachment(const Leaf& leaf)
  {
    if (m_out.attachments.size() >= m_limits.max_attachments) {
      // Counted before decoding, to bound the work (an empty unnamed part past the
      // limit, which would have been skipped, is counted too).
      ++m_out.attachments_over_limit;
      add_warning(m_out.warnings, "max_attachments");
      return;
    }
    Attachment a;
    const std::optional<std::string> declared = declared_file_name(leaf.object, m_options);
    std::string forwarded_subject;
    a.media_type = media_type_of(leaf.object);
    if (GMIME_IS_MESSAGE_PART(leaf.object)) {
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(leaf.object));
      if (inner != nullptr) {
        a.data = serialised(GMIME_OBJECT(inner));
        forwarded_subject = decoded_subject(inner);
      }
    } else {
      a.data = decoded_content(GMIME_PART(leaf.object));
      if (a.data.empty() && !declared && !has_attachment_disposition(leaf.object)) {
        return; // an empty, unnamed part: nothing to keep
      }
      if (is_forwarded_message_type(a.media_type)) {
        forwarded_subject = subject_of_raw_message(a.data, m_options);
      }
    }
    if (const char* id = g_mime_object_get_content_id(leaf.object)) {
      a.content_id = repair_utf8(id);
    }
    a.sha256_hex = util::sha256_hex(a.data);

    std::string name;
    if (declared) {
      name = sanitize_file_name(*declared);
    }
    if (name.empty() && is_forwarded_message_type(a.media_type)) {
      name = file_name_from_subject(forwarded_subject);
      if (!name.empty()) {
        name += ".eml";
      }
    }
    if (name.empty()) {
      name = default_file_name(m_out.attachments.size() + 1, a.media_type);
    }
    a.name = m_names.claim(name);
    m_out.attachments.push_back(std::move(a));
  }

  // XXX: GMime 3.2.13 parses a message/rfc822 part into a message and keeps no offsets
  // for it, so its bytes are GMime's re-serialisation: content bytes come unchanged
  // from the input stream, but line endings of rewritten lines, preamble/epilogue
  // whitespace and invalid header lines may differ from the input. The sha256 is of
  // these bytes. Nothing is modified before writing, so bug #165 cannot trigger.
  std::string serialised(GMimeObject* object)
  {
    const GObjectPtr<GMimeStream> out = adopt_gobject(g_mime_stream_mem_new());
    g_mime_object_write_to_stream(object, m_format, out.get());
    return stream_bytes(out.get());
  }

  const Limits& m_limits;
  ParsedMessage& m_out;
  GMimeParserOptions* m_options;
  GMimeFormatOptions* m_format;
  UniqueNames m_names;
  std::vector<Leaf> m_leaves;
  int m_next_alternative = 0;
  int m_chosen_alternative = -1;
  std::vector<std::size_t> m_last_candidate; // per multipart/alternative: its last body candidate
  std::size_t m_text = k_none;
  std::size_t m_html = k_none;
};

bool uses_crlf(std::string_view raw)
{
  const std::size_t lf = raw.find('\n');
  return lf != std::string_view::npos && lf > 0 && raw[lf - 1] == '\r';
}

} // namespace

void init()
{
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

ParsedMessage parse_message(std::string_view raw, const Limits& limits)
{
  init();
  ParsedMessage out;
  if (raw.empty()) {
    return out;
  }
  ParserOptionsPtr options = make_parser_options();
  g_mime_parser_options_set_warning_callback(options.get(), on_parser_warning, &out.warnings);
  const FormatOptionsPtr format(g_mime_format_options_new());
  g_mime_format_options_set_newline_format(
      format.get(), uses_crlf(raw) ? GMIME_NEWLINE_FORMAT_DOS : GMIME_NEWLINE_FORMAT_UNIX);

  // The memory stream copies the bytes; with persist_stream (the default) the parts'
  // content stays in it, lazily, so it must outlive `message`.
  const auto stream = adopt_gobject(g_mime_stream_mem_new_with_buffer(raw.data(), raw.size()));
  const auto parser = adopt_gobject(g_mime_parser_new_with_stream(stream.get()));
  const auto message = adopt_gobject(g_mime_parser_construct_message(parser.get(), options.get()));
  if (!message) {
    return out;
  }
  out.parsed = true;
  MessageReader(limits, out, options.get(), format.get()).read(message.get());
  return out;
}

} // namespace pli::mime
