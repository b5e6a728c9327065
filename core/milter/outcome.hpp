// The milter's decisions as one table: each outcome says what pli-milter answers Postfix
// (the libmilter return code and, for a refusal, the SMTP reply with its RFC 3463 enhanced
// status code and text), the name its log lines carry (`decision=NAME`) and the Prometheus
// counter it increments. Nothing outside this table spells a reply code or a decision name.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pli::milter {

// Every decision has a name, a log line and a counter. Stored nowhere: the numbers only
// index the table and the counters.
enum class Outcome : std::uint8_t
{
  accept_untouched,  // not registered mail: left alone
  registered,        // deliveries recorded, injected, removed from the original
  registered_retry,  // a retried message: nothing new to inject
  recipient_refused, // one recipient of a registered mail refused for good at re-injection
  dsn_recorded,      // a DSN for a delivery, recorded
  dsn_unattributed,  // mail to the bounce address we could not attribute
  tempfail_store_full,
  tempfail_store_error,
  tempfail_reinject_unreachable,
  tempfail_reinject_refused,
  tempfail_internal,
  tempfail_update_recipients, // Postfix refused to remove a recipient from the original
  tempfail_not_yet_sent,      // a report for a delivery whose `sent` is still being recorded
  // At RCPT, a report address of a delivery whose `sent` is still being recorded.
  tempfail_recipient_not_yet_sent,
  reject_too_large,
  reject_too_many_recipients,
  // Reports received from outside (RCPT and end of message of a pli-bounce+ID recipient).
  reject_unknown_delivery, // 550 5.1.1 at RCPT: an id pli never issued, or never sent
  reject_report_too_large, // 552 5.3.4: over bounce.max_report_kb, not parsed
  dsn_claim_recorded,      // a report from outside, recorded as an unverified claim
  reject_invalid_text,     // the store refused the message's record (a text not valid UTF-8)
  count_
};

// What the adapter returns to libmilter (core does not include libmilter's header).
enum class Action : std::uint8_t
{
  accept,   // SMFIS_ACCEPT, or SMFIS_DISCARD when the verdict leaves no recipient
  tempfail, // SMFIS_TEMPFAIL with the reply below
  reject,   // SMFIS_REJECT with the reply below
  none,     // not an answer: a decision about one recipient inside a registered mail
};

struct OutcomeInfo
{
  Outcome outcome;
  Action action;
  std::string_view smtp_code; // "" when Postfix's own reply stands
  std::string_view enhanced;  // RFC 3463, e.g. "4.3.0"
  std::string_view text;
  std::string_view name;    // the log lines' `decision=` value, and the counter's label
  std::string_view counter; // the Prometheus counter
};

inline constexpr std::string_view k_decisions_counter = "pli_milter_decisions_total";

inline constexpr std::array<OutcomeInfo, static_cast<std::size_t>(Outcome::count_)> k_outcomes{{
    {Outcome::accept_untouched, Action::accept, "", "", "", "accept_untouched",
     k_decisions_counter},
    {Outcome::registered, Action::accept, "", "", "", "registered", k_decisions_counter},
    {Outcome::registered_retry, Action::accept, "", "", "", "registered_retry",
     k_decisions_counter},
    {Outcome::recipient_refused, Action::none, "", "", "", "recipient_refused",
     k_decisions_counter},
    {Outcome::dsn_recorded, Action::accept, "", "", "", "dsn_recorded", k_decisions_counter},
    {Outcome::dsn_unattributed, Action::accept, "", "", "", "dsn_unattributed",
     k_decisions_counter},
    {Outcome::tempfail_store_full, Action::tempfail, "451", "4.3.0",
     "pli store full, try again later", "tempfail_store_full", k_decisions_counter},
    {Outcome::tempfail_store_error, Action::tempfail, "451", "4.3.0",
     "pli store unavailable, try again later", "tempfail_store_error", k_decisions_counter},
    {Outcome::tempfail_reinject_unreachable, Action::tempfail, "451", "4.3.0",
     "pli could not hand the message over, try again later", "tempfail_reinject_unreachable",
     k_decisions_counter},
    {Outcome::tempfail_reinject_refused, Action::tempfail, "451", "4.3.0",
     "pli could not hand the message over, try again later", "tempfail_reinject_refused",
     k_decisions_counter},
    {Outcome::tempfail_internal, Action::tempfail, "451", "4.3.0",
     "pli internal error, try again later", "tempfail_internal", k_decisions_counter},
    {Outcome::tempfail_update_recipients, Action::tempfail, "451", "4.3.0",
     "pli could not update the recipients", "tempfail_update_recipients", k_decisions_counter},
    {Outcome::tempfail_not_yet_sent, Action::tempfail, "451", "4.3.0",
     "pli is still recording this delivery", "tempfail_not_yet_sent", k_decisions_counter},
    {Outcome::tempfail_recipient_not_yet_sent, Action::tempfail, "450", "4.3.0",
     "Delivery report address not ready, try again later", "tempfail_recipient_not_yet_sent",
     k_decisions_counter},
    {Outcome::reject_too_large, Action::reject, "552", "5.3.4",
     "message too large for registered mail", "reject_too_large", k_decisions_counter},
    // A 4xx: the client may send the same mail again in smaller groups.
    {Outcome::reject_too_many_recipients, Action::tempfail, "452", "4.5.3",
     "too many recipients for registered mail, send in smaller groups",
     "reject_too_many_recipients", k_decisions_counter},
    {Outcome::reject_unknown_delivery, Action::reject, "550", "5.1.1",
     "No such delivery report address", "reject_unknown_delivery", k_decisions_counter},
    {Outcome::reject_report_too_large, Action::reject, "552", "5.3.4", "delivery report too large",
     "reject_report_too_large", k_decisions_counter},
    {Outcome::dsn_claim_recorded, Action::accept, "", "", "", "dsn_claim_recorded",
     k_decisions_counter},
    {Outcome::reject_invalid_text, Action::reject, "554", "5.6.0",
     "pli cannot record this message: a text in it is not valid UTF-8", "reject_invalid_text",
     k_decisions_counter},
}};

// The table's row of `o`.
constexpr const OutcomeInfo& info(Outcome o)
{
  return k_outcomes[static_cast<std::size_t>(o)];
}

// The log and counter name of `o` (as info(o).name).
constexpr std::string_view outcome_name(Outcome o)
{
  return info(o).name;
}

// True when every row sits at its outcome's index and every refusal has a reply whose
// class (4 or 5) matches its action: checked at compile time below.
constexpr bool table_is_consistent()
{
  for (std::size_t i = 0; i < k_outcomes.size(); ++i) {
    const OutcomeInfo& row = k_outcomes[i];
    if (static_cast<std::size_t>(row.outcome) != i || row.name.empty()) {
      return false;
    }
    const bool refusal = row.action == Action::tempfail || row.action == Action::reject;
    if (refusal != !row.smtp_code.empty()) {
      return false;
    }
    if (refusal && (row.smtp_code.size() != 3 || row.enhanced.empty() || row.text.empty() ||
                    row.smtp_code[0] != row.enhanced[0] ||
                    row.smtp_code[0] != (row.action == Action::tempfail ? '4' : '5'))) {
      return false;
    }
  }
  return true;
}
static_assert(table_is_consistent(),
              "k_outcomes: a row out of place or a reply of the wrong class");

} // namespace pli::milter
