// The hash chain of events: each event's hash is SHA-256 over the previous hash and
// the canonical JSON of the event (sorted keys, no whitespace, UTF-8).
#pragma once

#include "core/store/records.pb.h"

#include <string>

namespace pli::store {

// The canonical JSON of an event, without its own hash.
std::string canonical_event_json(const pb::Event& e);
// hex SHA-256 of (prev_hash || canonical_event_json(e)).
std::string event_hash(const pb::Event& e);
// True when every event's prev_hash is its predecessor's hash and every hash recomputes.
bool verify_chain(const std::vector<pb::Event>& events);

} // namespace pli::store
