// LmdbStore::check: every record read strictly, the damaged ones reported and, on request,
// rewritten repaired (see store.hpp and lenient.hpp).
#include "core/store/evidence.hpp"
#include "core/store/lmdb_store_impl.hpp"
#include "core/util/encoding.hpp"

#include <algorithm>
#include <set>
#include <type_traits>

namespace pli::store::detail {

namespace {

// A key as people read it: ids are printable; an event's key is message, NUL, seq (4 bytes).
std::string printable_key(std::string_view db, std::string_view key)
{
  if (db == "events" && key.size() > 5 && key[key.size() - 5] == '\0') {
    std::uint32_t seq = 0;
    for (std::size_t i = key.size() - 4; i < key.size(); ++i) {
      seq = (seq << 8) | static_cast<unsigned char>(key[i]);
    }
    return std::string(key.substr(0, key.size() - 5)) + "/" + std::to_string(seq);
  }
  const bool plain = std::all_of(key.begin(), key.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
  return plain ? std::string(key) : "hex:" + util::hex_encode(key);
}

struct Rewrite
{
  std::string key;
  std::string value;
  std::size_t damaged; // index in CheckResult::damaged
};

// Reads every record of `dbi` as a `Pb`; damaged ones go to `result`, repairable ones to
// `rewrites`. Returns an LMDB code.
template <typename Pb>
int check_db(MDB_txn* txn, MDB_dbi dbi, std::string_view name, CheckResult& result,
             std::vector<Rewrite>& rewrites, std::set<std::string>& damaged_messages)
{
  return lmdb::for_each_entry(
      txn, dbi, [&](MDB_cursor*, std::string_view key, std::string_view bytes) {
        auto repaired =
            check_record<Pb>(name, printable_key(name, key), bytes, result, damaged_messages);
        if (repaired) {
          rewrites.push_back({std::string(key), std::move(*repaired), result.damaged.size() - 1});
        }
        return 0;
      });
}

} // namespace

Result<CheckResult> LmdbStore::check(CheckMode mode)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), mode == CheckMode::repair ? 0 : MDB_RDONLY); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  CheckResult result;
  std::set<std::string> damaged_messages;
  struct Db
  {
    MDB_dbi dbi;
    std::string_view name;
    int (*run)(MDB_txn*, MDB_dbi, std::string_view, CheckResult&, std::vector<Rewrite>&,
               std::set<std::string>&);
  };
  const Db dbs[] = {
      {m_messages, "messages", &check_db<pb::Message>},
      {m_deliveries, "deliveries", &check_db<pb::Delivery>},
      {m_events, "events", &check_db<pb::Event>},
      {m_tokens, "tokens", &check_db<pb::Token>},
      {m_consultations, "consultations", &check_db<pb::Consultation>},
      {m_replies, "replies", &check_db<pb::Reply>},
      {m_credentials, "credentials", &check_db<pb::Credential>},
  };
  for (const auto& db : dbs) {
    if (db.dbi == 0 && db.name == "credentials") {
      continue; // a read-only open of a store made before the buyers' area
    }
    std::vector<Rewrite> rewrites;
    if (int rc = db.run(txn.get(), db.dbi, db.name, result, rewrites, damaged_messages); rc != 0) {
      return lmdb_error(rc, fmt::format("checking {}", db.name));
    }
    if (mode != CheckMode::repair) {
      continue;
    }
    for (const auto& r : rewrites) {
      if (int rc = put(txn, db.dbi, r.key, r.value); rc != 0) {
        return lmdb_error(rc, fmt::format("repairing {}", db.name));
      }
      result.damaged[r.damaged].repaired = true;
    }
  }
  if (mode == CheckMode::repair) {
    if (int rc = txn.commit(); rc != 0) {
      return lmdb_error(rc, "commit");
    }
  }
  for (const auto& mid : damaged_messages) {
    auto events = events_of_message(mid);
    result.chains[mid] = events && verify_chain(events.value());
  }
  return result;
}

} // namespace pli::store::detail
