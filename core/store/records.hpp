// What both stores (LMDB and PostgreSQL) do alike with their records: the schema version of
// a record, decoding one (read repaired when its text is not valid UTF-8, lenient.hpp),
// refusing one that would not read back, the delivery times an event sets, and the strict
// reading of one record by check(). Private to core/store.
#pragma once

#include "core/model/model.hpp"
#include "core/store/evidence.hpp"
#include "core/store/lenient.hpp"
#include "core/store/store.hpp"

#include <fmt/format.h>

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>

namespace pli::store::detail {

inline constexpr std::uint32_t k_schema_version = 1;

inline util::Error not_found(std::string_view what)
{
  return util::Error{Errc::not_found, std::string(what)};
}

// A stored record. One whose text is not valid UTF-8 (stored by an older pli) is read
// repaired, with its original bytes in `damaged_record` (lenient.hpp).
template <typename Pb> util::Result<Pb> decode(std::string_view bytes, std::string_view what)
{
  Pb record;
  if (!parse_lenient(bytes, record)) {
    return util::Error{Errc::invalid, fmt::format("{}: undecodable record", what)};
  }
  if (record.version() != k_schema_version) {
    return util::Error{
        Errc::invalid,
        fmt::format("{}: schema version {} is not supported by this pli", what, record.version())};
  }
  return record;
}

// ok, or Errc::invalid when a text of `record` is not valid UTF-8: protobuf's parser would
// refuse the record, so it is never written.
inline util::Status check_text(const google::protobuf::Message& record, std::string_view what)
{
  const std::string bad = first_invalid_text(record);
  if (bad.empty()) {
    return util::ok_status();
  }
  return util::Error{Errc::invalid,
                     fmt::format("{}: its field {} is not valid UTF-8 (it would not read back), "
                                 "nothing was recorded",
                                 what, bad)};
}

// A new delivery as both stores record it: the record's version, its message, status
// `sending` when unset. Errors: invalid (a text that would not read back).
inline util::Status prepare_delivery(pb::Delivery& d, const std::string& message)
{
  d.set_version(k_schema_version);
  d.set_message(message);
  if (d.status() == 0) {
    d.set_status(static_cast<std::uint32_t>(model::Status::sending));
  }
  return check_text(d, "delivery " + d.id());
}

// The record of a new reply to a delivery of `message`. Errors: invalid (a text that would
// not read back).
inline util::Result<pb::Reply> reply_record(const pb::Reply& reply, const std::string& message)
{
  pb::Reply rec = reply;
  rec.set_version(k_schema_version);
  rec.set_message(message);
  if (auto st = check_text(rec, "reply " + rec.id()); !st) {
    return st.error();
  }
  return rec;
}

// The event `ne` of `delivery` (of `message`) chained after the event `prev_seq` whose hash
// is `prev_hash` (0 and "" for a first event), with its own hash. Errors: invalid (a text
// that would not read back).
inline util::Result<pb::Event> chained_event(const NewEvent& ne, const std::string& message,
                                             const std::string& delivery, std::uint32_t prev_seq,
                                             const std::string& prev_hash)
{
  pb::Event e;
  e.set_version(k_schema_version);
  e.set_message(message);
  e.set_delivery(delivery);
  e.set_seq(prev_seq + 1);
  e.set_kind(static_cast<std::uint32_t>(ne.kind));
  e.set_at(ne.at);
  for (const auto& [k, v] : ne.detail) {
    (*e.mutable_detail())[k] = v;
  }
  e.set_prev_hash(prev_hash);
  if (auto st = check_text(e, "event"); !st) {
    return st.error();
  }
  e.set_hash(event_hash(e));
  return e;
}

// The times of a delivery that an event of `kind` at `at` sets (the first of each kind).
inline void record_times(pb::Delivery& d, model::EventKind kind, util::Micros at)
{
  switch (kind) {
  case model::EventKind::sent:
    if (d.sent_at() == 0) {
      d.set_sent_at(at);
    }
    break;
  case model::EventKind::delivered:
    if (d.delivered_at() == 0) {
      d.set_delivered_at(at);
    }
    break;
  case model::EventKind::failed:
    if (d.failed_at() == 0) {
      d.set_failed_at(at);
    }
    break;
  case model::EventKind::read:
    if (d.read_at() == 0) {
      d.set_read_at(at);
    }
    break;
  case model::EventKind::reply:
    if (d.replied_at() == 0) {
      d.set_replied_at(at);
    }
    break;
  case model::EventKind::revoked:
    d.set_revoked(true);
    break;
  default:
    break;
  }
}

// check(): one record of database `name` (shown as `key`) read strictly and counted in
// `result`; a damaged one is added to result.damaged (the messages of damaged events to
// `damaged_messages`). Returns the repaired bytes when only its text is at fault.
template <typename Pb>
std::optional<std::string> check_record(std::string_view name, const std::string& key,
                                        std::string_view bytes, CheckResult& result,
                                        std::set<std::string>& damaged_messages)
{
  ++result.records;
  Pb strict;
  if (strict.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    if (strict.version() != k_schema_version) {
      result.damaged.push_back(
          {std::string(name), key,
           fmt::format("schema version {} is not supported by this pli", strict.version()), false,
           false});
    } else if (!strict.damaged_record().empty()) {
      ++result.repaired_earlier;
    }
    return std::nullopt;
  }
  Pb repaired;
  if (!parse_lenient(bytes, repaired) || repaired.version() != k_schema_version) {
    result.damaged.push_back(
        {std::string(name), key, "undecodable record (corrupt bytes)", false, false});
    return std::nullopt;
  }
  result.damaged.push_back({std::string(name), key,
                            "a text field is not valid UTF-8 (written by an older pli)", true,
                            false});
  if constexpr (std::is_same_v<Pb, pb::Event>) {
    damaged_messages.insert(repaired.message());
  }
  return repaired.SerializeAsString();
}

} // namespace pli::store::detail
