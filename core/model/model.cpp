#include "core/model/model.hpp"

#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <array>

namespace pli::model {

namespace {

struct TypeRow
{
  MessageType type;
  std::string_view code;
  std::string_view fr;
  std::string_view en;
};

constexpr std::array<TypeRow, 8> k_types{{
    {MessageType::libre, "libre", "Courrier libre", "Free-form letter"},
    {MessageType::invitation, "invitation", "Invitation à concourir", "Invitation to tender"},
    {MessageType::modification, "modification", "Information de modification de la consultation",
     "Notice of change to the consultation"},
    {MessageType::reponse_question, "reponse-question", "Réponse à une question",
     "Answer to a question"},
    {MessageType::complement, "complement", "Demande de complément",
     "Request for additional information"},
    {MessageType::attribution, "attribution", "Courrier d'attribution", "Award letter"},
    {MessageType::notification, "notification", "Courrier de notification", "Notification letter"},
    {MessageType::rejet, "rejet", "Courrier de rejet", "Rejection letter"},
}};

struct StatusRow
{
  Status status;
  std::string_view code;
  std::string_view fr;
  std::string_view en;
};

constexpr std::array<StatusRow, 6> k_statuses{{
    {Status::sending, "sending", "En cours d'envoi", "Sending"},
    {Status::not_delivered, "not_delivered", "Non délivré", "Not delivered"},
    {Status::delivered, "delivered", "Délivré", "Delivered"},
    {Status::read, "read", "Lu par le destinataire", "Read by the recipient"},
    {Status::reply_unread, "reply_unread", "Réponse non lue", "Reply not read"},
    {Status::reply_read, "reply_read", "Réponse lue", "Reply read"},
}};

struct EventRow
{
  EventKind kind;
  std::string_view code;
  std::string_view fr;
  std::string_view en;
};

constexpr std::array<EventRow, 13> k_events{{
    {EventKind::sent, "sent", "Envoi du courrier", "Mail sent"},
    {EventKind::delayed, "delayed", "Remise retardée", "Delivery delayed"},
    {EventKind::delivered, "delivered", "Courrier délivré", "Mail delivered"},
    {EventKind::failed, "failed", "Courrier non délivré", "Mail not delivered"},
    {EventKind::read, "read", "Courrier lu", "Mail read"},
    {EventKind::download, "download", "Pièce jointe téléchargée", "Attachment downloaded"},
    {EventKind::reply, "reply", "Réponse du destinataire", "Reply from the recipient"},
    {EventKind::reply_read, "reply_read", "Réponse lue", "Reply read"},
    {EventKind::revoked, "revoked", "Lien révoqué", "Link revoked"},
    {EventKind::fetched, "fetched", "Lien consulté (technique)", "Link fetched (technical)"},
    {EventKind::remote_failed, "remote_failed",
     "Échec signalé par un serveur distant (non vérifié)",
     "Failure reported by a remote server (unverified)"},
    {EventKind::remote_delivered, "remote_delivered",
     "Remise signalée par un serveur distant (non vérifiée)",
     "Delivery reported by a remote server (unverified)"},
    {EventKind::remote_delayed, "remote_delayed",
     "Retard signalé par un serveur distant (non vérifié)",
     "Delay reported by a remote server (unverified)"},
}};

} // namespace

const std::vector<MessageType>& all_message_types()
{
  static const std::vector<MessageType> all = [] {
    std::vector<MessageType> v;
    for (const auto& row : k_types) {
      v.push_back(row.type);
    }
    return v;
  }();
  return all;
}

const std::vector<Status>& all_statuses()
{
  static const std::vector<Status> all = [] {
    std::vector<Status> v;
    for (const auto& row : k_statuses) {
      v.push_back(row.status);
    }
    return v;
  }();
  return all;
}

std::string_view code(MessageType t)
{
  for (const auto& row : k_types) {
    if (row.type == t) {
      return row.code;
    }
  }
  return "libre";
}

std::string_view code(Mode m)
{
  switch (m) {
  case Mode::ar:
    return "ar";
  case Mode::simple:
    return "simple";
  case Mode::off:
    return "off";
  }
  return "ar";
}

std::string_view code(Status s)
{
  for (const auto& row : k_statuses) {
    if (row.status == s) {
      return row.code;
    }
  }
  return "sending";
}

std::string_view code(EventKind k)
{
  for (const auto& row : k_events) {
    if (row.kind == k) {
      return row.code;
    }
  }
  return "sent";
}

std::optional<MessageType> parse_message_type(std::string_view c)
{
  std::string lower = util::ascii_lower(util::trim(c));
  for (const auto& row : k_types) {
    if (row.code == lower) {
      return row.type;
    }
  }
  return std::nullopt;
}

std::optional<Mode> parse_mode(std::string_view c)
{
  std::string lower = util::ascii_lower(util::trim(c));
  if (lower == "ar") {
    return Mode::ar;
  }
  if (lower == "simple") {
    return Mode::simple;
  }
  if (lower == "off") {
    return Mode::off;
  }
  return std::nullopt;
}

std::optional<Status> parse_status(std::string_view c)
{
  for (const auto& row : k_statuses) {
    if (row.code == c) {
      return row.status;
    }
  }
  return std::nullopt;
}

std::optional<EventKind> parse_event_kind(std::string_view c)
{
  for (const auto& row : k_events) {
    if (row.code == c) {
      return row.kind;
    }
  }
  return std::nullopt;
}

std::optional<Locale> parse_locale(std::string_view c)
{
  if (c == "fr") {
    return Locale::fr;
  }
  if (c == "en") {
    return Locale::en;
  }
  return std::nullopt;
}

std::string_view label(MessageType t, Locale l)
{
  for (const auto& row : k_types) {
    if (row.type == t) {
      return l == Locale::fr ? row.fr : row.en;
    }
  }
  return "";
}

std::string_view label(Status s, Locale l)
{
  for (const auto& row : k_statuses) {
    if (row.status == s) {
      return l == Locale::fr ? row.fr : row.en;
    }
  }
  return "";
}

std::string_view label(EventKind k, Locale l)
{
  for (const auto& row : k_events) {
    if (row.kind == k) {
      return l == Locale::fr ? row.fr : row.en;
    }
  }
  return "";
}

Status apply_event(Status current, EventKind event)
{
  auto rank = [](Status s) {
    switch (s) {
    case Status::sending:
      return 0;
    case Status::not_delivered:
    case Status::delivered:
      return 1;
    case Status::read:
      return 2;
    case Status::reply_unread:
      return 3;
    case Status::reply_read:
      return 4;
    }
    return 0;
  };
  switch (event) {
  case EventKind::sent:
  case EventKind::delayed:
    return current;
  case EventKind::delivered:
    // A late "delivered" never undoes a read; it does supersede a failure report
    // (one recipient server may report failure for a backup MX, then accept).
    return rank(current) <= 1 ? Status::delivered : current;
  case EventKind::failed:
    return rank(current) <= 1 ? Status::not_delivered : current;
  case EventKind::read:
    return rank(current) < 2 ? Status::read : current;
  case EventKind::reply:
    return Status::reply_unread;
  case EventKind::reply_read:
    return current == Status::reply_unread ? Status::reply_read : current;
  case EventKind::download:
  case EventKind::revoked:
  case EventKind::fetched:
  case EventKind::remote_failed:
  case EventKind::remote_delivered:
  case EventKind::remote_delayed:
    return current;
  }
  return current;
}

bool is_remote_claim(EventKind event)
{
  return event == EventKind::remote_failed || event == EventKind::remote_delivered ||
         event == EventKind::remote_delayed;
}

} // namespace pli::model
