// Classifying non-standard bounces (no RFC 3464 delivery-status part) from their text.
//
// Signals, in the order they decide:
//   - SMTP reply codes (RFC 5321 section 4.2: 5yz permanent, 4yz transient) written where
//     a reply is quoted ("said: 550 ...", "<<< 550", a line starting with the code, or a
//     code followed by an enhanced code), and RFC 3463 enhanced status codes (5.x.x, 4.x.x);
//   - English and French phrases that MTAs put in their notices, split into bounce
//     wording ("could not be delivered", "n'a pas pu être remis"), reasons ("user
//     unknown", "boîte pleine") and delay wording ("will retry", "remise différée");
//   - the sender (MAILER-DAEMON, postmaster) and the subject ("Undelivered Mail ...").
// A 4xx code means delayed only in a delay context; a notice that gave up on a 4xx is
// failed. Auto-replies (RFC 3834) without bounce signs are not bounces.
#include "core/dsn/detail.hpp"
#include "core/dsn/phrases.hpp"
#include "core/util/gobject_ptr.hpp"
#include "core/util/text.hpp"

#include <glib.h>

#include <array>

namespace pli::dsn::detail {

namespace {

using namespace phrases;

// XXX: only the head of a notice is read; a notice longer than this is a returned
// message appended without a recognised separator, where phrases would mislead anyway.
constexpr std::size_t k_max_text_bytes = 64 * 1024;
constexpr std::size_t k_max_diagnostic_bytes = 500;

template <std::size_t N>
bool contains_any(std::string_view hay, const std::array<const char*, N>& needles)
{
  for (const char* n : needles) {
    if (hay.find(n) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}
bool is_alnum(char c)
{
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// A line without its surrounding spaces, tabs and carriage returns.
std::string_view trim_view(std::string_view s)
{
  return util::trim(s, " \t\r");
}

// An RFC 3463 code starting at i ("5.1.1"); returns its length or 0.
std::size_t enhanced_code_at(std::string_view s, std::size_t i)
{
  if (i >= s.size() || (s[i] != '2' && s[i] != '4' && s[i] != '5')) {
    return 0;
  }
  if (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '.' || s[i - 1] == '-')) {
    return 0;
  }
  std::size_t j = i + 1;
  for (int part = 0; part < 2; ++part) {
    if (j >= s.size() || s[j] != '.') {
      return 0;
    }
    ++j;
    std::size_t start = j;
    while (j < s.size() && is_digit(s[j]) && j - start < 4) {
      ++j;
    }
    if (j == start || j - start > 3) {
      return 0;
    }
  }
  if (j < s.size() && (is_alnum(s[j]) || (s[j] == '.' && j + 1 < s.size() && is_digit(s[j + 1])))) {
    return 0;
  }
  return j - i;
}

bool is_reply_code_at(std::string_view s, std::size_t i)
{
  if (i + 3 > s.size() || (s[i] != '4' && s[i] != '5') || s[i + 1] < '0' || s[i + 1] > '5' ||
      !is_digit(s[i + 2])) {
    return false;
  }
  if (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '.' || s[i - 1] == ':' || s[i - 1] == '-' ||
                s[i - 1] == '/' || s[i - 1] == '+' || s[i - 1] == '=')) {
    return false;
  }
  std::size_t j = i + 3;
  if (j == s.size()) {
    return true;
  }
  return s[j] == ' ' || s[j] == '-' || s[j] == '\t' || s[j] == ')' || s[j] == ',';
}

// A reply code counts when it is written where a reply is quoted.
bool reply_code_is_quoted(std::string_view line, std::size_t i)
{
  std::size_t after = i + 3;
  if (after < line.size() && (line[after] == ' ' || line[after] == '-') &&
      enhanced_code_at(line, after + 1) != 0) {
    return true;
  }
  std::string before(trim_view(line.substr(0, i)));
  for (char& c : before) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  if (before.empty() || before == "<<<" || before == ">>>" || before == "..." || before == "#" ||
      before == "(") {
    return true;
  }
  for (std::string_view end : {"said:", "said", ":", "<<<", "reply", "response", "error", "code",
                               "smtp;", "smtp", "replied", "answered", "returned", "("}) {
    if (before.size() >= end.size() &&
        before.compare(before.size() - end.size(), end.size(), end) == 0) {
      return true;
    }
  }
  return false;
}

struct CodeHit
{
  std::string code;
  std::size_t line = 0;
};

struct Codes
{
  std::optional<CodeHit> enhanced5, enhanced4, reply5, reply4;
};

Codes find_codes(const std::vector<std::string_view>& lines)
{
  Codes c;
  for (std::size_t n = 0; n < lines.size(); ++n) {
    std::string_view line = lines[n];
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] != '4' && line[i] != '5') {
        continue;
      }
      if (std::size_t len = enhanced_code_at(line, i); len != 0) {
        auto& slot = line[i] == '5' ? c.enhanced5 : c.enhanced4;
        if (!slot) {
          slot = CodeHit{std::string(line.substr(i, len)), n};
        }
        i += len - 1;
        continue;
      }
      if (is_reply_code_at(line, i) && reply_code_is_quoted(line, i)) {
        auto& slot = line[i] == '5' ? c.reply5 : c.reply4;
        if (!slot) {
          slot = CodeHit{std::string(line.substr(i, 3)), n};
        }
        i += 2;
      }
    }
  }
  return c;
}

std::vector<std::string_view> split_lines(std::string_view text)
{
  std::vector<std::string_view> lines;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) {
      lines.push_back(trim_view(text.substr(pos)));
      break;
    }
    lines.push_back(trim_view(text.substr(pos, eol - pos)));
    pos = eol + 1;
  }
  return lines;
}

// Cuts the text at the first line that introduces the returned original message.
std::string_view cut_returned_message(std::string_view text)
{
  std::size_t pos = 0;
  std::size_t nonblank = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    std::size_t end = eol == std::string_view::npos ? text.size() : eol;
    std::string_view line = text.substr(pos, end - pos);
    std::string norm = normalize_for_match(line);
    if (nonblank > 0 && contains_any(norm, k_cut_markers)) {
      return text.substr(0, pos);
    }
    // Headers of a returned message pasted without a separator.
    if (nonblank > 2 &&
        (norm.rfind("return-path:", 0) == 0 || norm.rfind("received: from", 0) == 0)) {
      return text.substr(0, pos);
    }
    if (!trim_view(line).empty()) {
      ++nonblank;
    }
    pos = end + 1;
  }
  return text;
}

bool is_addr_char(char c)
{
  return is_alnum(c) || c == '.' || c == '-' || c == '_' || c == '+' || c == '=' || c == '%' ||
         c == '\'' || c == '/' || c == '!' || c == '#' || c == '$' || c == '&' || c == '*' ||
         c == '?' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}' || c == '~' ||
         static_cast<unsigned char>(c) >= 0x80;
}

struct AddrHit
{
  std::string address;
  bool at_line_start = false;
};

std::vector<AddrHit> find_addresses(std::string_view line)
{
  std::vector<AddrHit> out;
  std::size_t at = line.find('@');
  while (at != std::string_view::npos) {
    std::size_t b = at;
    while (b > 0 && is_addr_char(line[b - 1])) {
      --b;
    }
    std::size_t e = at + 1;
    while (e < line.size() && (is_alnum(line[e]) || line[e] == '.' || line[e] == '-' ||
                               static_cast<unsigned char>(line[e]) >= 0x80)) {
      ++e;
    }
    while (e > at + 1 && line[e - 1] == '.') {
      --e;
    }
    while (b < at && (line[b] == '.' || line[b] == '\'')) {
      ++b;
    }
    if (b < at && e > at + 1 &&
        line.substr(at + 1, e - at - 1).find('.') != std::string_view::npos) {
      std::string_view prefix = trim_view(line.substr(0, b));
      bool start = prefix.empty() || prefix == "<" || prefix == "\"";
      out.push_back(AddrHit{std::string(line.substr(b, e - b)), start});
    }
    at = line.find('@', e);
  }
  return out;
}

bool is_system_address(std::string_view addr)
{
  std::string a(addr);
  for (char& c : a) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  for (std::string_view p : {"mailer-daemon@", "postmaster@", "mailer_daemon@", "mail-daemon@",
                             "mailerdaemon@", "root@", "noreply@", "no-reply@"}) {
    if (a.rfind(p, 0) == 0) {
      return true;
    }
  }
  return false;
}

bool from_is_daemon(std::string_view from)
{
  std::string f = normalize_for_match(from);
  for (const char* p :
       {"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster",
        "mail delivery", "maildelivery", "mail administrator", "mail system", "delivery subsystem",
        "mail router", "mdaemon", "system administrator", "mail service", "microsoftexchange",
        "mail delivery system", "service de messagerie", "systeme de messagerie"}) {
    if (f.find(p) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// The line that best explains the outcome: the chosen code's line, else a reason line,
// else a bounce-wording line.
std::string diagnostic_line(std::string_view line)
{
  std::string out(trim_view(line));
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 32 || u == 127) {
      c = ' ';
    }
  }
  if (out.size() > k_max_diagnostic_bytes) {
    std::size_t cut = k_max_diagnostic_bytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    out.resize(cut);
  }
  return out;
}

} // namespace

std::string normalize_for_match(std::string_view utf8)
{
  const util::GCharPtr nfd(
      g_utf8_normalize(utf8.data(), static_cast<gssize>(utf8.size()), G_NORMALIZE_NFD));
  std::string_view in = nfd != nullptr ? std::string_view(nfd.get()) : utf8;
  std::string out;
  out.reserve(in.size());
  bool space = false;
  for (std::size_t i = 0; i < in.size(); ++i) {
    auto c = static_cast<unsigned char>(in[i]);
    // Combining diacritical marks U+0300..U+036F: CC 80..CD AF.
    if ((c == 0xCC ||
         (c == 0xCD && i + 1 < in.size() && static_cast<unsigned char>(in[i + 1]) <= 0xAF)) &&
        i + 1 < in.size()) {
      ++i;
      continue;
    }
    // U+2018, U+2019 (E2 80 98/99) and U+00B4 (C2 B4) become '.
    if (c == 0xE2 && i + 2 < in.size() && static_cast<unsigned char>(in[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(in[i + 2]) == 0x98 ||
         static_cast<unsigned char>(in[i + 2]) == 0x99)) {
      i += 2;
      out.push_back('\'');
      space = false;
      continue;
    }
    if (c == 0xC2 && i + 1 < in.size() && static_cast<unsigned char>(in[i + 1]) == 0xB4) {
      ++i;
      out.push_back('\'');
      space = false;
      continue;
    }
    bool ws = c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v' ||
              (c == 0xC2 && i + 1 < in.size() && static_cast<unsigned char>(in[i + 1]) == 0xA0);
    if (ws) {
      if (c == 0xC2) {
        ++i;
      }
      if (!space && !out.empty()) {
        out.push_back(' ');
      }
      space = true;
      continue;
    }
    space = false;
    out.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
  }
  if (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  return out;
}

bool subject_is_auto_reply(std::string_view subject)
{
  std::string s = normalize_for_match(subject);
  return contains_any(s, k_auto_reply_subjects);
}

TextVerdict classify_text(const TextEvidence& ev)
{
  TextVerdict verdict;
  std::string_view text = ev.text.substr(0, std::min(ev.text.size(), k_max_text_bytes));
  text = cut_returned_message(text);
  std::string body = normalize_for_match(text);
  std::string subject = normalize_for_match(ev.subject);

  bool daemon = from_is_daemon(ev.from);
  bool auto_subject = subject_is_auto_reply(ev.subject);
  bool subject_fail = !auto_subject && contains_any(subject, k_fail_subjects);
  bool subject_delay = !auto_subject && contains_any(subject, k_delay_subjects);
  bool bounce_subject =
      subject_fail || subject_delay || (!auto_subject && contains_any(subject, k_bounce_subjects));
  if (ev.auto_reply && !daemon && !bounce_subject) {
    return verdict;
  }

  // DSN fields pasted into the text (e.g. a Postfix report sent as one text/plain part).
  DeliveryStatus pasted = parse_embedded_fields(text);
  if (!pasted.recipients.empty()) {
    verdict.recipients = std::move(pasted.recipients);
    verdict.reporting_mta = std::move(pasted.reporting_mta);
    verdict.original_envelope_id = std::move(pasted.original_envelope_id);
    verdict.arrival_date = std::move(pasted.arrival_date);
    return verdict;
  }

  bool bounce_words = contains_any(body, k_bounce_phrases);
  bool reason_words = contains_any(body, k_reason_phrases);
  bool delay_words = contains_any(body, k_delay_phrases);
  bool final_words = contains_any(body, k_final_phrases);

  std::vector<std::string_view> lines = split_lines(text);
  Codes codes = find_codes(lines);
  bool any_code = codes.enhanced5 || codes.enhanced4 || codes.reply5 || codes.reply4;

  bool is_bounce = daemon || bounce_subject || bounce_words || (reason_words && any_code) ||
                   (delay_words && any_code);
  if (!is_bounce) {
    return verdict;
  }

  bool permanent_code = codes.reply5 || codes.enhanced5;
  bool temporary_code = codes.reply4 || codes.enhanced4;
  bool subject_says_delay = subject_delay && !subject_fail;
  bool subject_says_fail = subject_fail && !subject_delay;
  Action action = Action::unknown;
  if (subject_says_delay && !final_words) {
    action = Action::delayed;
  } else if (permanent_code || subject_says_fail) {
    action = Action::failed;
  } else if (delay_words && !final_words) {
    action = Action::delayed;
  } else if (temporary_code || bounce_words || reason_words) {
    action = Action::failed;
  }
  if (action == Action::unknown) {
    return verdict;
  }

  RecipientReport r;
  r.action = action;
  bool failed = action == Action::failed;
  const auto& enh_first = failed ? codes.enhanced5 : codes.enhanced4;
  const auto& enh_second = failed ? codes.enhanced4 : codes.enhanced5;
  const auto& rep_first = failed ? codes.reply5 : codes.reply4;
  const auto& rep_second = failed ? codes.reply4 : codes.reply5;
  const auto& enh = enh_first ? enh_first : enh_second;
  const auto& rep = rep_first ? rep_first : rep_second;
  if (enh) {
    r.status = enh->code;
  }
  if (rep) {
    r.reply_code = rep->code;
  }
  std::optional<std::size_t> diag_line;
  if (rep) {
    diag_line = rep->line;
  } else if (enh) {
    diag_line = enh->line;
  } else {
    for (std::size_t n = 0; n < lines.size() && !diag_line; ++n) {
      if (contains_any(normalize_for_match(lines[n]), k_reason_phrases)) {
        diag_line = n;
      }
    }
    for (std::size_t n = 0; n < lines.size() && !diag_line; ++n) {
      if (contains_any(normalize_for_match(lines[n]), k_bounce_phrases)) {
        diag_line = n;
      }
    }
    for (std::size_t n = 0; n < lines.size() && !diag_line; ++n) {
      if (contains_any(normalize_for_match(lines[n]), k_delay_phrases)) {
        diag_line = n;
      }
    }
  }
  if (diag_line) {
    r.diagnostic_code = diagnostic_line(lines[*diag_line]);
  }

  // The recipient: X-Failed-Recipients, else an address opening a line, else one on the
  // diagnostic line, else the first address of the notice that is not a system address.
  if (!ev.failed_rcpt.empty()) {
    auto hits = find_addresses(ev.failed_rcpt);
    if (!hits.empty()) {
      r.final_recipient = hits.front().address;
    }
  }
  std::string first_any;
  std::string on_diag;
  for (std::size_t n = 0; n < lines.size() && r.final_recipient.empty(); ++n) {
    for (const auto& hit : find_addresses(lines[n])) {
      if (is_system_address(hit.address)) {
        continue;
      }
      if (hit.at_line_start) {
        r.final_recipient = hit.address;
        break;
      }
      if (diag_line && n == *diag_line && on_diag.empty()) {
        on_diag = hit.address;
      }
      if (first_any.empty()) {
        first_any = hit.address;
      }
    }
  }
  if (r.final_recipient.empty()) {
    r.final_recipient = !on_diag.empty() ? on_diag : first_any;
  }
  verdict.recipients.push_back(std::move(r));
  return verdict;
}

} // namespace pli::dsn::detail
