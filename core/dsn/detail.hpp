// Internals of pli::dsn, exposed for its unit tests only: the by-hand reader of
// RFC 3464 / RFC 6533 field groups and the classifier for non-standard bounces.
// Neither touches GMime; dsn.cpp finds the parts and feeds them text.
#pragma once

#include "core/dsn/dsn.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pli::dsn::detail {

struct Field
{
  std::string name;  // lower-cased
  std::string value; // unfolded, trimmed, as written otherwise
};

struct FieldGroup
{
  std::vector<Field> fields;
  std::size_t end_offset = 0;   // offset in the text just past the group's last line
  bool has_other_lines = false; // lines that are neither fields nor continuations
};

// Splits a delivery-status body into field groups: lines end with CRLF, LF or CR;
// whitespace-only lines are blank and a run of them ends a group; lines starting with
// SP/HT continue the previous field. Never fails; garbage gives groups without fields.
std::vector<FieldGroup> split_field_groups(std::string_view text);

// What one message/(global-)delivery-status body says.
struct DeliveryStatus
{
  std::string reporting_mta;
  std::string original_envelope_id;
  std::string arrival_date;
  std::vector<RecipientReport> recipients;
  bool has_fields = false; // at least one field was read
};

// Parses a decoded delivery-status body (RFC 3464 section 2.1, RFC 6533 section 6).
// Group 1 holds the per-message fields unless it already names a recipient; every
// group with Final-/Original-Recipient, Action or Status is one recipient (a group that
// repeats Final- or Original-Recipient is split). Handles the Postfix-via-Exchange
// quirk (Content-Transfer-Encoding: base64 in group 1, recipient groups base64-encoded
// after it). Never fails.
DeliveryStatus parse_delivery_status(std::string_view body);

// Reads DSN fields pasted into the text of a non-standard bounce: per-message fields
// from a group with Reporting-MTA, recipients from groups with Final-Recipient and
// Action or Status. Keeps only recipients whose Action is failed or delayed (success
// is never taken from free text). Never fails.
DeliveryStatus parse_embedded_fields(std::string_view text);

// Removes an address-type prefix ("rfc822;", "utf-8;", ...) and the <> around the
// address; decodes RFC 6533 \x{HHHH} escapes when the type is utf-8.
std::string clean_address(std::string_view value);

// Removes a leading type token ("dns;", "smtp;", "X-Postfix;") from a field value.
std::string strip_type(std::string_view value);

// Decodes RFC 6533 section 3 `\x{HHHH}` escapes (1-6 hex digits, a valid Unicode
// scalar) to UTF-8; anything else is kept literally.
std::string decode_utf8_escapes(std::string_view text);

// Maps an Action value (any case, possibly with a trailing comment) to Action.
Action action_from(std::string_view value);

// The first SMTP reply code (e.g. "550") at the start of a Diagnostic-Code value, or "".
std::string leading_reply_code(std::string_view diagnostic);

// What the classifier is given about a message that has no usable delivery-status part.
struct TextEvidence
{
  std::string_view subject;     // decoded
  std::string_view from;        // the From header (raw, unfolded)
  std::string_view text;        // the notification text, valid UTF-8
  std::string_view failed_rcpt; // X-Failed-Recipients, may be empty
  bool auto_reply = false;      // RFC 3834 / vacation headers or subject
};

// What the text says.
struct TextVerdict
{
  std::vector<RecipientReport> recipients; // empty: not a bounce
  std::string reporting_mta;               // from pasted DSN fields, if any
  std::string original_envelope_id;
  std::string arrival_date;
};

// Classifies a non-standard bounce from its text (the returned message, when pasted
// after a known separator, is cut off first). DSN fields pasted into the text are used
// when present; otherwise returns one recipient with action failed or delayed (never
// delivered: success is not inferred from free text). Returns no recipients when
// nothing says a delivery failed or was delayed, or when the message is an auto-reply
// without bounce signs. Never fails.
TextVerdict classify_text(const TextEvidence& evidence);

// True when the subject (any case) reads like an RFC 3834 auto-reply or a vacation notice.
bool subject_is_auto_reply(std::string_view subject);

// Lower-cases ASCII, strips accents (NFD, combining marks dropped), maps typographic
// apostrophes to ' and collapses every whitespace run to one space. Input must be valid UTF-8.
std::string normalize_for_match(std::string_view utf8);

} // namespace pli::dsn::detail
