// The domain model: message types, modes, statuses, event kinds,
// with their machine names (JSON, CLI, config) and French/English labels.
// Stored enums have explicit numbers that are never reused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pli::model {

enum class Locale
{
  fr,
  en
};

enum class MessageType : std::uint8_t
{
  libre = 1,
  invitation = 2,
  modification = 3,
  reponse_question = 4,
  complement = 5,
  attribution = 6,
  notification = 7,
  rejet = 8,
};

enum class Mode : std::uint8_t
{
  ar = 1,
  simple = 2,
  off = 3
};

enum class Status : std::uint8_t
{
  sending = 1,
  not_delivered = 2,
  delivered = 3,
  read = 4,
  reply_unread = 5,
  reply_read = 6,
};

enum class EventKind : std::uint8_t
{
  sent = 1,
  delayed = 2,
  delivered = 3,
  failed = 4,
  read = 5,
  download = 6,
  reply = 7,
  reply_read = 8,
  revoked = 9,
  fetched = 10,
  // Reports received from outside (any SMTP client, not the organisation's own Postfix):
  // claims kept with their origin, never evidence of the delivery's outcome (apply_event).
  remote_failed = 11,
  remote_delivered = 12,
  remote_delayed = 13,
};

const std::vector<MessageType>& all_message_types();
const std::vector<Status>& all_statuses();

// Machine names: "rejet", "ar", "not_delivered", "sent" ...
std::string_view code(MessageType t);
std::string_view code(Mode m);
std::string_view code(Status s);
std::string_view code(EventKind k);

// Parse machine names; nullopt when unknown. Type codes accept any case and accents
// are not expected (codes are ASCII).
std::optional<MessageType> parse_message_type(std::string_view code);
std::optional<Mode> parse_mode(std::string_view code);
std::optional<Status> parse_status(std::string_view code);
std::optional<EventKind> parse_event_kind(std::string_view code);
std::optional<Locale> parse_locale(std::string_view code);

// Labels for people: "Courrier de rejet", "Lu par le destinataire" ...
std::string_view label(MessageType t, Locale l = Locale::fr);
std::string_view label(Status s, Locale l = Locale::fr);
std::string_view label(EventKind k, Locale l = Locale::fr);

// The status a delivery has after `event`, given its current status. Events that
// never change a status (fetched, download, revoked) return `current`. Reports received
// from outside (remote_failed, remote_delivered, remote_delayed) never change it either:
// anyone who holds a delivery id can send one, so they are shown as unverified claims
// beside the evidence of the organisation's own Postfix, which alone sets the status (a
// remote failure after a local relay shows as Délivré with that claim in the timeline).
// True when `event` is such a report received from outside.
bool is_remote_claim(EventKind event);
Status apply_event(Status current, EventKind event);

} // namespace pli::model
