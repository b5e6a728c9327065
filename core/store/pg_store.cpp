// PgStore: the writes (messages, events with their chain, tokens, replies, consultations,
// credentials) and the lookups, each one transaction or one statement.
#include "core/store/pg_store_impl.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <fmt/format.h>

namespace pli::store::detail {

namespace {

util::Error conflict(const std::string& what)
{
  return util::Error{Errc::conflict, what + " already exists"};
}

// A unique violation named for the record, other errors as they are.
util::Error named(const util::Error& e, const std::string& what)
{
  return e.code == Errc::conflict ? conflict(what) : e;
}

// The blobs a message names (its original and attachments), as a text[] literal.
std::string blobs_literal(const pb::Message& m)
{
  std::vector<std::string> shas;
  if (!m.original_sha256().empty()) {
    shas.push_back(m.original_sha256());
  }
  for (const auto& a : m.attachments()) {
    if (!a.sha256().empty()) {
      shas.push_back(a.sha256());
    }
  }
  return pq::text_array(shas);
}

} // namespace

bool storable_key(std::string_view key)
{
  return !key.empty() && key.find('\0') == std::string_view::npos && util::is_utf8(key);
}

util::Status PgStore::in_transaction(const std::function<util::Status(pq::Conn&)>& body,
                                     std::string_view mode)
{
  for (int attempt = 0;; ++attempt) {
    auto lease = m_pool.acquire();
    if (!lease) {
      return lease.error();
    }
    pq::Conn& conn = **lease;
    util::Status st = util::ok_status();
    {
      // BEGIN goes with the body's first statement, the body's writes (deferred) with the
      // COMMIT: a transaction of writes only is one round trip.
      pq::Tx tx(conn);
      st = tx.begin(mode);
      if (st) {
        st = body(conn);
      }
      if (st) {
        st = tx.commit();
      }
    }
    if (!st && st.error().code == Errc::unavailable && attempt == 0 && !conn.commit_unknown()) {
      // A pooled connection the server closed (restarted): the transaction was not committed.
      // Dropped by the pool; the call goes on with a new one.
      continue;
    }
    if (!st && conn.retryable() && attempt < 4) {
      continue;
    }
    return st;
  }
}

Result<pq::Rows> PgStore::query(const std::string& sql, const pq::Params& params,
                                std::string_view what)
{
  for (int attempt = 0;; ++attempt) {
    auto lease = m_pool.acquire();
    if (!lease) {
      return lease.error();
    }
    auto rows = (*lease)->exec(sql, params, what);
    // A read is safe to run again on a new connection when the pooled one was closed.
    if (!rows && rows.error().code == Errc::unavailable && attempt == 0) {
      continue;
    }
    return rows;
  }
}

Result<pq::Rows> PgStore::read_row(const std::string& sql, const std::string& key,
                                   std::string_view what)
{
  if (!storable_key(key)) {
    return not_found(fmt::format("no {} '{}'", what, key));
  }
  auto rows = query(sql, pq::Params{}.text(key), what);
  if (rows && rows->size() == 0) {
    return not_found(fmt::format("no {} '{}'", what, key));
  }
  return rows;
}

template <typename Pb>
Result<Pb> PgStore::read_record(const std::string& sql, const std::string& key,
                                std::string_view what)
{
  auto rows = read_row(sql, key, what);
  if (!rows) {
    return rows.error();
  }
  return decode<Pb>(rows->bytes(0, 0), what);
}

Result<std::string> PgStore::read_value(const std::string& sql, const std::string& key,
                                        std::string_view what)
{
  auto rows = read_row(sql, key, what);
  if (!rows) {
    return rows.error();
  }
  return rows->text(0, 0);
}

util::Status PgStore::put_blobs(pq::Conn& conn, const std::map<std::string, std::string>& blobs)
{
  for (const auto& [sha, bytes] : blobs) {
    conn.defer("INSERT INTO blobs (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
               pq::Params{}.text(sha).bytes(bytes), "blob");
  }
  return util::ok_status();
}

util::Status PgStore::put_token(pq::Conn& conn, const std::string& hash, std::uint32_t purpose,
                                const std::string& delivery, const std::string& reply,
                                util::Micros created_at, util::Micros expires_at)
{
  pb::Token t;
  t.set_version(k_schema_version);
  t.set_purpose(purpose);
  t.set_delivery(delivery);
  t.set_reply(reply);
  t.set_created_at(created_at);
  t.set_expires_at(expires_at);
  conn.defer("INSERT INTO tokens (hash, delivery, record) VALUES ($1, $2, $3)",
             pq::Params{}.text(hash).text(delivery).bytes(t.SerializeAsString()), "token", "token");
  return util::ok_status();
}

Result<pq::Rows> PgStore::row_of(pq::Conn& conn, const std::string& sql, const std::string& key,
                                 std::string_view what)
{
  if (!storable_key(key)) {
    return not_found(fmt::format("no {} '{}'", what, key));
  }
  auto rows = conn.exec(sql, pq::Params{}.text(key), what);
  if (!rows) {
    return rows.error();
  }
  if (rows->size() == 0) {
    return not_found(fmt::format("no {} '{}'", what, key));
  }
  return rows;
}

Result<util::Unit> PgStore::create_message(NewMessage m)
{
  pb::Message& msg = m.message;
  msg.set_version(k_schema_version);
  if (auto st = check_text(msg, "message " + msg.id()); !st) {
    return st.error();
  }
  std::vector<pb::Delivery> deliveries;
  deliveries.reserve(m.deliveries.size());
  for (pb::Delivery d : m.deliveries) {
    if (auto st = prepare_delivery(d, msg.id()); !st) {
      return st.error();
    }
    deliveries.push_back(std::move(d));
  }
  return in_transaction(
      [&](pq::Conn& conn) { return write_message(conn, msg, deliveries, m.blobs); });
}

util::Status PgStore::write_message(pq::Conn& conn, const pb::Message& msg,
                                    const std::vector<pb::Delivery>& deliveries,
                                    const std::map<std::string, std::string>& blobs)
{
  // Every row deferred: sent with the caller's next statement or its COMMIT, in one round
  // trip.
  const std::string record = msg.SerializeAsString();
  const std::string sender = util::ascii_lower(msg.sender());
  const std::string from = util::ascii_lower(msg.from_header());
  const std::string words = pq::text_array(index_words(msg.subject() + "\n" + msg.text_body()));
  conn.defer(
      "INSERT INTO messages (id, sent_at, blobs, record) "
      "VALUES ($1, $2, $3::text[], $4)",
      pq::Params{}.text(msg.id()).i64(msg.sent_at()).literal(blobs_literal(msg)).bytes(record),
      "message", "message " + msg.id());
  conn.defer("INSERT INTO chain_heads (message, seq, hash) VALUES ($1, 0, '') "
             "ON CONFLICT DO NOTHING",
             pq::Params{}.text(msg.id()), "chain head");
  if (auto st = put_blobs(conn, blobs); !st) {
    return st;
  }
  if (!msg.message_id().empty()) {
    conn.defer("INSERT INTO msgids (message_id, message) VALUES ($1, $2) "
               "ON CONFLICT (message_id) DO UPDATE SET message = EXCLUDED.message",
               pq::Params{}.text(msg.message_id()).text(msg.id()), "message-id index");
  }
  for (const auto& d : deliveries) {
    conn.defer("INSERT INTO deliveries (id, message, sent_at, status, type, consultation, "
               "recipient, sender, from_header, words, record) VALUES ($1, $2, $3, $4, $5, "
               "$6, $7, $8, $9, array_to_tsvector($10::text[]), $11)",
               pq::Params{}
                   .text(d.id())
                   .text(msg.id())
                   .i64(msg.sent_at())
                   .i16(static_cast<std::int16_t>(d.status()))
                   .i16(static_cast<std::int16_t>(msg.type()))
                   .text(msg.consultation())
                   .text(util::ascii_lower(d.recipient()))
                   .text(sender)
                   .text(from)
                   .literal(words)
                   .bytes(d.SerializeAsString()),
               "delivery", "delivery " + d.id());
    if (!d.token_hash().empty()) {
      if (auto st = put_token(conn, d.token_hash(), 1, d.id(), "", d.created_at(), d.expires_at());
          !st) {
        return st;
      }
    }
    if (!d.idempotency_key().empty()) {
      conn.defer("INSERT INTO idempotency (key, delivery) VALUES ($1, $2) "
                 "ON CONFLICT (key) DO UPDATE SET delivery = EXCLUDED.delivery",
                 pq::Params{}.text(d.idempotency_key()).text(d.id()), "idempotency index");
    }
  }
  return util::ok_status();
}

Result<std::vector<pb::Event>> PgStore::apply_events(pq::Conn& conn,
                                                     const std::vector<NewEvent>& events)
{
  // Per event one round trip reads what it needs (the dedupe key's INSERT, the chain head and
  // the delivery, locked), sent with the writes deferred before it (the previous event's, or
  // the caller's BEGIN); its own writes are deferred to the next event's round trip or the
  // caller's COMMIT. A call of one event in its own transaction is two round trips.
  std::vector<pb::Event> stored;
  for (const auto& ne : events) {
    const bool keyed = !ne.dedupe_key.empty();
    pq::Rows dedupe;
    if (keyed) {
      // A key recorded by another transaction that is not committed yet: this INSERT waits
      // for it, then records nothing.
      conn.defer("INSERT INTO idempotency (key, delivery) VALUES ($1, $2) "
                 "ON CONFLICT DO NOTHING",
                 pq::Params{}.text("event:" + ne.dedupe_key).text(ne.delivery), "event dedupe", {},
                 &dedupe);
    }
    if (!storable_key(ne.delivery)) {
      if (auto st = conn.flush(); !st) {
        return st.error();
      }
      if (keyed && dedupe.affected() == 0) {
        continue; // recorded before
      }
      return not_found(fmt::format("no delivery '{}'", ne.delivery));
    }
    // The chain head first: every writer of this message's events waits here, in order; then
    // the delivery as it is now that this transaction holds the chain (another host may have
    // changed it meanwhile).
    pq::Rows head;
    conn.defer("SELECT seq, hash FROM chain_heads WHERE message = "
               "(SELECT message FROM deliveries WHERE id = $1) FOR UPDATE",
               pq::Params{}.text(ne.delivery), "event chain", {}, &head);
    auto found = conn.exec("SELECT message, record FROM deliveries WHERE id = $1 FOR UPDATE",
                           pq::Params{}.text(ne.delivery), "delivery");
    if (!found) {
      return found.error();
    }
    if (keyed && dedupe.affected() == 0) {
      continue; // recorded before
    }
    if (found->size() == 0) {
      return not_found(fmt::format("no delivery '{}'", ne.delivery));
    }
    const std::string message = found->text(0, 0);
    std::uint32_t last_seq = 0;
    std::string last_hash;
    if (head.size() == 0) {
      // A message without its head row (copied in by hand): the head from its newest event.
      auto newest = conn.exec("SELECT record FROM events WHERE message = $1 ORDER BY seq DESC "
                              "LIMIT 1",
                              pq::Params{}.text(message), "event chain");
      if (!newest) {
        return newest.error();
      }
      pb::Event last;
      if (newest->size() > 0 && !parse_lenient(newest->bytes(0, 0), last)) {
        return util::Error{Errc::invalid, "event: undecodable record"};
      }
      auto made = conn.exec(
          "INSERT INTO chain_heads (message, seq, hash) VALUES ($1, $2, $3) "
          "ON CONFLICT DO NOTHING",
          pq::Params{}.text(message).i32(static_cast<std::int32_t>(last.seq())).text(last.hash()),
          "event chain");
      if (!made) {
        return made.error();
      }
      auto again = conn.exec("SELECT seq, hash FROM chain_heads WHERE message = $1 FOR UPDATE",
                             pq::Params{}.text(message), "event chain");
      if (!again) {
        return again.error();
      }
      head = std::move(again.value());
    }
    if (head.size() > 0) {
      last_seq = static_cast<std::uint32_t>(head.integer(0, 0));
      last_hash = head.text(0, 1);
    }
    auto delivery = decode<pb::Delivery>(found->bytes(0, 1), "delivery");
    if (!delivery) {
      return delivery.error();
    }
    auto chained = chained_event(ne, message, delivery->id(), last_seq, last_hash);
    if (!chained) {
      return chained.error();
    }
    pb::Event& e = chained.value();
    conn.defer("INSERT INTO events (message, seq, record) VALUES ($1, $2, $3)",
               pq::Params{}
                   .text(message)
                   .i32(static_cast<std::int32_t>(e.seq()))
                   .bytes(e.SerializeAsString()),
               "event");
    if (ne.kind == model::EventKind::sent) {
      // Wakes every host's wait_for_sent at this transaction's commit (pg_listen.hpp).
      conn.defer("SELECT pg_notify('pli_sent', $1)", pq::Params{}.text(ne.delivery),
                 "sent notification");
    }
    conn.defer("UPDATE chain_heads SET seq = $2, hash = $3 WHERE message = $1",
               pq::Params{}.text(message).i32(static_cast<std::int32_t>(e.seq())).text(e.hash()),
               "event chain");
    auto old_status = static_cast<model::Status>(delivery->status());
    auto new_status = model::apply_event(old_status, ne.kind);
    record_times(*delivery, ne.kind, ne.at);
    delivery->set_status(static_cast<std::uint32_t>(new_status));
    conn.defer("UPDATE deliveries SET status = $2, record = $3 WHERE id = $1",
               pq::Params{}
                   .text(delivery->id())
                   .i16(static_cast<std::int16_t>(new_status))
                   .bytes(delivery->SerializeAsString()),
               "delivery");
    if (ne.job) {
      // Its id is not needed here: sent with the transaction's other deferred statements.
      conn.defer(
          "INSERT INTO jobs (queue, kind, payload, created_at, due_at) "
          "VALUES ($1, $2, $3, $4, $4)",
          pq::Params{}.text(ne.job->queue).text(ne.job->kind).bytes(ne.job->payload).i64(ne.at),
          "job");
    }
    stored.push_back(std::move(e));
  }
  return stored;
}

Result<std::vector<pb::Event>> PgStore::append_events(const std::vector<NewEvent>& events)
{
  std::vector<pb::Event> stored;
  auto st = in_transaction([&](pq::Conn& conn) -> util::Status {
    auto r = apply_events(conn, events);
    if (!r) {
      return r.error();
    }
    stored = std::move(r.value());
    return util::ok_status();
  });
  if (!st) {
    return st.error();
  }
  return stored;
}

Result<util::Unit> PgStore::add_token(const std::string& delivery, const std::string& token_hash,
                                      util::Micros expires_at)
{
  return in_transaction([&](pq::Conn& conn) -> util::Status {
    auto d = row_of(conn, "SELECT 1 FROM deliveries WHERE id = $1 FOR SHARE", delivery, "delivery");
    if (!d) {
      return d.error();
    }
    return put_token(conn, token_hash, 1, delivery, "", util::now_micros(), expires_at);
  });
}

Result<util::Unit> PgStore::add_reply_token(const std::string& reply, const std::string& token_hash,
                                            util::Micros expires_at)
{
  return in_transaction([&](pq::Conn& conn) -> util::Status {
    // No row lock: pli_linkd, which calls this, may not UPDATE replies (FOR SHARE needs it).
    auto rows = row_of(conn, "SELECT record FROM replies WHERE id = $1", reply, "reply");
    if (!rows) {
      return rows.error();
    }
    auto rep = decode<pb::Reply>(rows->bytes(0, 0), "reply");
    if (!rep) {
      return rep.error();
    }
    return put_token(conn, token_hash, 2, rep->delivery(), rep->id(), util::now_micros(),
                     expires_at);
  });
}

Result<util::Unit> PgStore::create_reply(const NewReply& r)
{
  return in_transaction([&](pq::Conn& conn) -> util::Status {
    auto rows = row_of(conn, "SELECT record FROM deliveries WHERE id = $1 FOR UPDATE",
                       r.reply.delivery(), "delivery");
    if (!rows) {
      return rows.error();
    }
    auto d = decode<pb::Delivery>(rows->bytes(0, 0), "delivery");
    if (!d) {
      return d.error();
    }
    auto made = reply_record(r.reply, d->message());
    if (!made) {
      return made.error();
    }
    const pb::Reply& rec = made.value();
    std::vector<std::string> shas;
    for (const auto& a : rec.attachments()) {
      if (!a.sha256().empty()) {
        shas.push_back(a.sha256());
      }
    }
    auto ins = conn.exec("INSERT INTO replies (id, delivery, message, blobs, record) "
                         "VALUES ($1, $2, $3, $4::text[], $5)",
                         pq::Params{}
                             .text(rec.id())
                             .text(d->id())
                             .text(d->message())
                             .literal(pq::text_array(shas))
                             .bytes(rec.SerializeAsString()),
                         "reply");
    if (!ins) {
      return named(ins.error(), "reply " + rec.id());
    }
    if (auto st = put_blobs(conn, r.blobs); !st) {
      return st;
    }
    if (!rec.token_hash().empty()) {
      if (auto st =
              put_token(conn, rec.token_hash(), 2, d->id(), rec.id(), rec.at(), r.token_expires_at);
          !st) {
        return st;
      }
    }
    d->add_reply_ids(rec.id());
    auto up = conn.exec("UPDATE deliveries SET record = $2 WHERE id = $1",
                        pq::Params{}.text(d->id()).bytes(d->SerializeAsString()), "delivery");
    if (!up) {
      return up.error();
    }
    if (!r.events.empty()) {
      if (auto ev = apply_events(conn, r.events); !ev) {
        return ev.error();
      }
    }
    return util::ok_status();
  });
}

Result<util::Unit> PgStore::put_consultation(const pb::Consultation& c)
{
  pb::Consultation rec = c;
  rec.set_version(k_schema_version);
  if (auto st = check_text(rec, "consultation"); !st) {
    return st.error();
  }
  return in_transaction([&](pq::Conn& conn) -> util::Status {
    auto r = conn.exec("INSERT INTO consultations (reference, record) VALUES ($1, $2) "
                       "ON CONFLICT (reference) DO UPDATE SET record = EXCLUDED.record",
                       pq::Params{}.text(rec.reference()).bytes(rec.SerializeAsString()),
                       "consultation");
    return r ? util::ok_status() : util::Status(r.error());
  });
}

Result<util::Unit> PgStore::put_credential(const std::string& key, const pb::Credential& c,
                                           util::Micros now)
{
  pb::Credential rec = c;
  if (auto st = check_text(rec, "credential"); !st) {
    return st.error();
  }
  rec.set_version(k_schema_version);
  return in_transaction([&](pq::Conn& conn) -> util::Status {
    // Expired ones go: sessions and login links are few (one per active buyer).
    auto r = conn.exec("DELETE FROM credentials WHERE expires_at <= $1", pq::Params{}.i64(now),
                       "credential cleanup");
    if (!r) {
      return r.error();
    }
    r = conn.exec("INSERT INTO credentials (key, expires_at, record) VALUES ($1, $2, $3)",
                  pq::Params{}.text(key).i64(rec.expires_at()).bytes(rec.SerializeAsString()),
                  "credential");
    if (!r) {
      return r.error().code == Errc::conflict ? util::Error{Errc::conflict, "credential exists"}
                                              : r.error();
    }
    return util::ok_status();
  });
}

Result<pb::Credential> PgStore::get_credential(const std::string& key)
{
  auto c = read_record<pb::Credential>("SELECT record FROM credentials WHERE key = $1", key,
                                       "credential");
  if (!c && c.error().code == Errc::invalid) {
    return util::Error{Errc::invalid, "credential: undecodable record"};
  }
  return c;
}

Result<pb::Credential> PgStore::take_credential(const std::string& key)
{
  if (!storable_key(key)) {
    return not_found("credential: not found");
  }
  Result<pb::Credential> taken = not_found("credential: not found");
  auto st = in_transaction([&](pq::Conn& conn) -> util::Status {
    auto r = conn.exec("DELETE FROM credentials WHERE key = $1 RETURNING record",
                       pq::Params{}.text(key), "credential");
    if (!r) {
      return r.error();
    }
    if (r->size() == 0) {
      taken = not_found("credential: not found");
    } else {
      taken = decode<pb::Credential>(r->bytes(0, 0), "credential");
    }
    return util::ok_status();
  });
  if (!st) {
    return st.error();
  }
  return taken;
}

Result<std::uint64_t> PgStore::count_failure(const std::string& key, util::Micros window_start,
                                             util::Micros window_end)
{
  if (!storable_key(key)) {
    return util::Error{Errc::io, "a rate limit key that cannot be stored"};
  }
  // An UNLOGGED table: no WAL, so no fsync per failure counted (a crash of the server empties
  // it, which only forgives the current windows).
  if (m_failure_calls.fetch_add(1, std::memory_order_relaxed) % 1000 == 0) {
    auto gone = query("DELETE FROM rate_windows WHERE window_end <= $1",
                      pq::Params{}.i64(window_start), "rate limits");
    if (!gone) {
      return gone.error();
    }
  }
  auto r = query("INSERT INTO rate_windows (key, window_start, window_end, count) "
                 "VALUES ($1, $2, $3, 1) ON CONFLICT (key, window_start) "
                 "DO UPDATE SET count = rate_windows.count + 1 RETURNING count",
                 pq::Params{}.text(key).i64(window_start).i64(window_end), "rate limit");
  if (!r) {
    return r.error();
  }
  return static_cast<std::uint64_t>(r->integer(0, 0));
}

Result<pb::Message> PgStore::get_message(const std::string& id)
{
  return read_record<pb::Message>("SELECT record FROM messages WHERE id = $1", id, "message");
}

Result<pb::Delivery> PgStore::get_delivery(const std::string& id)
{
  return read_record<pb::Delivery>("SELECT record FROM deliveries WHERE id = $1", id, "delivery");
}

Result<pb::Token> PgStore::get_token(const std::string& hash)
{
  return read_record<pb::Token>("SELECT record FROM tokens WHERE hash = $1", hash, "token");
}

Result<pb::Consultation> PgStore::get_consultation(const std::string& reference)
{
  return read_record<pb::Consultation>("SELECT record FROM consultations WHERE reference = $1",
                                       reference, "consultation");
}

Result<pb::Reply> PgStore::get_reply(const std::string& id)
{
  return read_record<pb::Reply>("SELECT record FROM replies WHERE id = $1", id, "reply");
}

Result<std::string> PgStore::get_blob(const std::string& sha)
{
  return read_value("SELECT bytes FROM blobs WHERE sha256 = $1", sha, "blob");
}

Result<std::string> PgStore::find_by_message_id(const std::string& message_id)
{
  return read_value("SELECT message FROM msgids WHERE message_id = $1", message_id, "Message-ID");
}

Result<std::string> PgStore::find_by_idempotency_key(const std::string& key)
{
  return read_value("SELECT delivery FROM idempotency WHERE key = $1", key, "idempotency key");
}

Result<std::vector<pb::Event>> PgStore::events_of_message(const std::string& message_id)
{
  std::vector<pb::Event> out;
  if (!storable_key(message_id)) {
    return out;
  }
  auto rows = query("SELECT record FROM events WHERE message = $1 ORDER BY seq",
                    pq::Params{}.text(message_id), "events");
  if (!rows) {
    return rows.error();
  }
  for (int i = 0; i < rows->size(); ++i) {
    auto e = decode<pb::Event>(rows->bytes(i, 0), "event");
    if (!e) {
      return e.error();
    }
    out.push_back(std::move(e.value()));
  }
  return out;
}

} // namespace pli::store::detail
