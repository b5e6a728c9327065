// PgStore: the Store interface over a PostgreSQL database shared by several hosts. Every
// call leases one connection of the pool (pq.hpp) for its duration; every write is one
// transaction committed with synchronous_commit on before it returns. The tables, indexes,
// the append-only trigger on events and the roles' rights are made by migrate_schema
// (pg_schema.cpp) and described in doc/storage.md.
//
// The implementation is split by concern: pg_schema.cpp (schema, migration, rights,
// opening), pg_store.cpp (writes and lookups), pg_query.cpp (list, for_each, purge, check).
// This header is private to core/store.
#pragma once

#include "core/store/pg_listen.hpp"
#include "core/store/pq.hpp"
#include "core/store/records.hpp"
#include "core/store/store.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pli::store::detail {

class PgStore final : public Store
{
public:
  explicit PgStore(const PgOptions& options) : m_pool(options) {}

  // Leases a connection (the pool's first check of the server). Errors: those of connect.
  Result<pq::Lease> lease() { return m_pool.acquire(); }

  Result<util::Unit> create_message(NewMessage m) override;
  Result<std::vector<pb::Event>> append_events(const std::vector<NewEvent>& events) override;
  Result<util::Unit> add_token(const std::string& delivery, const std::string& token_hash,
                               util::Micros expires_at) override;
  Result<util::Unit> add_reply_token(const std::string& reply, const std::string& token_hash,
                                     util::Micros expires_at) override;
  Result<pb::Message> get_message(const std::string& id) override;
  Result<pb::Delivery> get_delivery(const std::string& id) override;
  Result<pb::Token> get_token(const std::string& hash) override;
  Result<pb::Consultation> get_consultation(const std::string& reference) override;
  Result<std::string> get_blob(const std::string& sha) override;
  Result<std::string> find_by_message_id(const std::string& message_id) override;
  Result<std::string> find_by_idempotency_key(const std::string& key) override;
  Result<std::vector<pb::Event>> events_of_message(const std::string& message_id) override;
  Result<util::Unit> create_reply(const NewReply& r) override;
  Result<pb::Reply> get_reply(const std::string& id) override;
  Result<util::Unit> put_consultation(const pb::Consultation& c) override;
  Result<ListResult> list(const Query& q) override;
  Result<std::size_t> for_each(const Query& q,
                               const std::function<bool(const ListItem&)>& fn) override;
  Result<PurgeResult> purge(util::Micros before, PurgeMode mode) override;
  Result<CheckResult> check(CheckMode mode) override;
  Result<util::Unit> put_credential(const std::string& key, const pb::Credential& c,
                                    util::Micros now) override;
  Result<pb::Credential> get_credential(const std::string& key) override;
  Result<pb::Credential> take_credential(const std::string& key) override;
  Result<std::uint64_t> count_failure(const std::string& key, util::Micros window_start,
                                      util::Micros window_end) override;
  Result<std::uint64_t> enqueue(const Job& job, util::Micros now) override; // pg_jobs.cpp
  Result<std::vector<ClaimedJob>> claim_jobs(const std::string& queue, util::Micros now,
                                             util::Micros lease, std::size_t max) override;
  Result<util::Unit> finish_job(std::uint64_t id) override;
  Result<util::Unit> retry_job(std::uint64_t id, util::Micros due_at) override;
  Result<std::vector<ClaimedJob>> list_jobs(const std::string& queue) override;
  // A new job row inside the caller's transaction; returns its id.
  static Result<std::uint64_t> insert_job(pq::Conn& conn, const Job& job, util::Micros now);
  Result<pb::Delivery> wait_for_sent(const std::string& id,
                                     std::chrono::milliseconds max) override; // pg_listen.cpp
  Result<std::size_t>
  export_messages(const std::function<bool(const MessageBundle&)>& fn) override; // pg_copy.cpp
  Result<std::size_t> export_loose(const std::function<bool(const LooseRecord&)>& fn) override;
  Result<Imported> import_message(const MessageBundle& b) override;
  Result<std::size_t> import_loose(const std::vector<LooseRecord>& batch) override;

private:
  // Runs `body` in one transaction on a leased connection and commits it; the whole
  // transaction is run again (a few times) after a deadlock or a serialization failure.
  // `mode` as pq::Tx::begin. Errors: body's, unavailable, io.
  util::Status in_transaction(const std::function<util::Status(pq::Conn&)>& body,
                              std::string_view mode = {});
  // One statement outside a transaction (a lookup). Errors: unavailable, io.
  Result<pq::Rows> query(const std::string& sql, const pq::Params& params, std::string_view what);
  // The rows of `sql` with the key $1 (a lookup); not_found when there is none.
  Result<pq::Rows> read_row(const std::string& sql, const std::string& key, std::string_view what);
  // The record in column 0 of the one row of `sql` with the key $1, decoded.
  template <typename Pb>
  Result<Pb> read_record(const std::string& sql, const std::string& key, std::string_view what);
  // The text in column 0 of the one row of `sql` with the key $1.
  Result<std::string> read_value(const std::string& sql, const std::string& key,
                                 std::string_view what);

  // The events of one call, appended inside the caller's transaction: each locks its
  // message's chain head (SELECT ... FOR UPDATE), so that two hosts appending to one
  // message at once are serialised and the chain stays correct.
  Result<std::vector<pb::Event>> apply_events(pq::Conn& conn, const std::vector<NewEvent>& events);
  // A new message's rows (message, chain head, blobs, Message-ID, deliveries with their
  // tokens and idempotency keys), inside the caller's transaction: create_message's, and
  // import_message's for a message copied from another store.
  util::Status write_message(pq::Conn& conn, const pb::Message& msg,
                             const std::vector<pb::Delivery>& deliveries,
                             const std::map<std::string, std::string>& blobs);
  // Stores blobs that are not there yet (content-addressed: ON CONFLICT DO NOTHING).
  util::Status put_blobs(pq::Conn& conn, const std::map<std::string, std::string>& blobs);
  // A new token row (conflict when that hash exists): `purpose` 1 names a delivery, 2 a
  // reply of it.
  util::Status put_token(pq::Conn& conn, const std::string& hash, std::uint32_t purpose,
                         const std::string& delivery, const std::string& reply,
                         util::Micros created_at, util::Micros expires_at);
  // The rows of `sql` with the key $1 inside a transaction; not_found (naming `what`) when
  // there is none.
  static Result<pq::Rows> row_of(pq::Conn& conn, const std::string& sql, const std::string& key,
                                 std::string_view what);

  pq::Pool m_pool;
  // wait_for_sent's LISTEN connection, started by its first call.
  std::atomic<std::uint64_t> m_failure_calls{0}; // count_failure: every 1,000th cleans up
  std::mutex m_listener_mu;
  std::unique_ptr<SentListener> m_listener;
};

// A key that cannot be stored in a text column (a NUL byte, invalid UTF-8): no record has
// it.
bool storable_key(std::string_view key);

} // namespace pli::store::detail
