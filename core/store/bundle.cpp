// The checks of copied records (bundle.hpp).
#include "core/store/bundle.hpp"

#include "core/store/evidence.hpp"
#include "core/store/records.hpp"
#include "core/util/crypto.hpp"

#include <fmt/format.h>

namespace pli::store::detail {

std::set<std::string> bundle_blob_names(const pb::Message& m, const std::vector<pb::Reply>& replies)
{
  std::set<std::string> out;
  out.insert(m.original_sha256());
  for (const auto& a : m.attachments()) {
    out.insert(a.sha256());
  }
  for (const auto& r : replies) {
    for (const auto& a : r.attachments()) {
      out.insert(a.sha256());
    }
  }
  out.erase("");
  return out;
}

util::Status check_bundle(const MessageBundle& b)
{
  const pb::Message& msg = b.message;
  auto invalid = [&](const std::string& why) -> util::Status {
    return util::Error{Errc::invalid, fmt::format("message {}: {}", msg.id(), why)};
  };
  if (!verify_chain(b.events)) {
    return invalid("its event chain does not verify");
  }
  for (const auto& e : b.events) {
    if (e.message() != msg.id()) {
      return invalid(fmt::format("an event of {} in its bundle", e.message()));
    }
  }
  if (static_cast<std::size_t>(msg.delivery_ids_size()) != b.deliveries.size()) {
    return invalid("its bundle lacks deliveries");
  }
  for (std::size_t i = 0; i < b.deliveries.size(); ++i) {
    const auto& d = b.deliveries[i];
    if (d.message() != msg.id() || d.id() != msg.delivery_ids(static_cast<int>(i))) {
      return invalid(fmt::format("delivery {} does not belong to it", d.id()));
    }
  }
  for (const auto& [sha, bytes] : b.blobs) {
    if (util::sha256_hex(bytes) != sha) {
      return invalid(fmt::format("blob {} does not match its hash", sha));
    }
  }
  return check_text(msg, "message " + msg.id());
}

util::Status check_loose(const LooseRecord& r)
{
  auto fails = [](const auto& parsed) -> util::Status {
    if (!parsed) {
      return parsed.error();
    }
    return util::ok_status();
  };
  switch (r.kind) {
  case LooseRecord::Kind::token:
    return fails(decode<pb::Token>(r.value, "token " + r.key));
  case LooseRecord::Kind::consultation:
    return fails(decode<pb::Consultation>(r.value, "consultation " + r.key));
  case LooseRecord::Kind::credential:
    return fails(decode<pb::Credential>(r.value, "credential"));
  case LooseRecord::Kind::key:
    break;
  }
  return util::ok_status();
}

bool same_record(const google::protobuf::Message& a, const google::protobuf::Message& b)
{
  return a.SerializeAsString() == b.SerializeAsString();
}

} // namespace pli::store::detail
