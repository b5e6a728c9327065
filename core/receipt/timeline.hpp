// What a receipt, a notification and `pli show` say about an exchange: the data of one
// delivery gathered from the store, and the timeline sentences as the procurement
// platform writes them ("Envoi du courrier par …", "Courrier délivré à …",
// "Courrier lu par …"), French or English.
#pragma once

#include "core/model/model.hpp"
#include "core/store/store.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pli::receipt {

// Everything a receipt states about one delivery.
struct Exchange
{
  store::pb::Message message;
  store::pb::Delivery delivery;
  std::vector<store::pb::Event> events; // every event of the message, oldest first (the chain)
  std::optional<store::pb::Consultation> consultation;
};

// Reads a delivery, its message, the message's events and its consultation.
// Errors: the store's (not_found for an unknown delivery).
util::Result<Exchange> gather(store::Store& st, const std::string& delivery_id);

// "Envoi du courrier par alice@…", "Courrier délivré à bob@…", "Courrier lu par bob@…" ...
std::string event_sentence(const store::pb::Event& e, const Exchange& x, model::Locale l);
// The evidence of an event for people: remote server and diagnostic, IP address, file name...
// "" when there is none.
std::string event_evidence(const store::pb::Event& e, model::Locale l);
// One row of a delivery's visible timeline (receipt PDF, buyers' area): an event, or a
// summary of the repeated events left out.
struct TimelineRow
{
  const store::pb::Event* event = nullptr; // nullptr: a summary row
  util::Micros at = 0;
  std::string sentence;
  std::string evidence;
};

// The visible timeline of delivery `delivery_id`, bounded whatever its history: every event
// of a kind that cannot repeat without bound (sent, delivered, failed, reply, revoked ...)
// is shown; of each repeatable kind (read, download, fetched, reply_read, delayed) the
// first `keep` and the last are shown, the others summarised in one row placed before the
// last ("… et 19 949 autres consultations du … au …"). The chain itself (evidence.json) is
// not summarised: it stays complete, as the signature covers every event.
std::vector<TimelineRow> timeline_rows(const Exchange& x, const std::string& delivery_id,
                                       model::Locale l, const std::string& timezone,
                                       std::size_t keep = 50);

// The sender as people know it: the From header when there is one, else the envelope sender.
std::string sender_display(const store::pb::Message& m);

} // namespace pli::receipt
