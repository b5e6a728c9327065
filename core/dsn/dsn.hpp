// Delivery status notifications (RFC 3464, RFC 6533) and non-standard bounces.
//
// parse_report() reads a whole bounce message (raw bytes as received) and returns
// the per-message fields and one entry per recipient group of its
// message/delivery-status (or message/global-delivery-status) part, found with
// GMime. When the message carries no such part, it falls back to inferring the
// outcome from the text (SMTP reply codes, RFC 3463 enhanced status codes and
// well-known English and French phrases); such a report says `inferred = true`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pli::dsn {

enum class Action
{
  failed,
  delayed,
  delivered,
  relayed,
  expanded,
  unknown
};

struct RecipientReport
{
  std::string final_recipient;    // address without the "rfc822;" type and without <>
  std::string original_recipient; // same, may be empty
  Action action = Action::unknown;
  std::string action_raw;      // the Action field as written (lower-cased), e.g. "deliverable"
  std::string status;          // first token of Status, e.g. "5.1.1"; may be empty
  std::string remote_mta;      // without the "dns;" type
  std::string diagnostic_code; // without its type ("smtp;", "X-Postfix;"), unfolded
  std::string reply_code;      // SMTP reply code leading Diagnostic-Code (or the
                               // inferred text's line), e.g. "550"; may be empty
  std::string last_attempt_date;
  std::string will_retry_until;
};

struct Report
{
  bool inferred = false; // true: no delivery-status part; classified from the text
  std::string reporting_mta;
  std::string original_envelope_id;
  std::string arrival_date;
  std::string subject; // the bounce's own Subject, decoded
  std::vector<RecipientReport> recipients;
};

// Returns the report, or std::nullopt when the message is not a bounce at all
// (no delivery-status part naming a recipient and nothing in the text that says
// delivery failed or was delayed; ARF feedback reports, MDNs and auto-replies).
// An inferred report holds one recipient (failed or delayed; success is never
// inferred from free text) unless DSN fields were pasted into the text; its status
// is the RFC 3463 code found in the text and may be empty, its diagnostic_code the
// line holding the code or phrase. Never throws on bad input.
std::optional<Report> parse_report(std::string_view raw_message);

// The Action's name: "failed", "delayed", "delivered", "relayed", "expanded", "unknown".
std::string_view action_name(Action action);

// The event an Action maps to: delivered/relayed/expanded -> "delivered",
// failed -> "failed", delayed -> "delayed"; unknown -> "" (no event).
std::string_view event_kind_for(Action action);

} // namespace pli::dsn
