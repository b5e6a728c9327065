// PgStore's half of `pli store copy` (store.hpp: export_messages, export_loose,
// import_message, import_loose): every record read as stored and written back with the
// columns PostgreSQL's indexes are built on.
#include "core/store/bundle.hpp"
#include "core/store/pg_store_impl.hpp"

#include <fmt/format.h>

namespace pli::store::detail {

namespace {

util::Error disagree(const std::string& id, const std::string& why)
{
  return util::Error{Errc::conflict, fmt::format("message {} ({})", id, why)};
}

} // namespace

Result<std::size_t> PgStore::export_messages(const std::function<bool(const MessageBundle&)>& fn)
{
  // Ids first, then each message in a REPEATABLE READ snapshot of its own.
  auto ids = query("SELECT id FROM messages ORDER BY sent_at, id", pq::Params{}, "messages");
  if (!ids) {
    return ids.error();
  }
  std::size_t visited = 0;
  for (int i = 0; i < ids->size(); ++i) {
    const std::string id = ids->text(i, 0);
    MessageBundle b;
    bool gone = false;
    auto st = in_transaction(
        [&](pq::Conn& conn) -> util::Status {
          b = MessageBundle{};
          auto m = conn.exec("SELECT record FROM messages WHERE id = $1", pq::Params{}.text(id),
                             "message");
          if (!m) {
            return m.error();
          }
          if (m->size() == 0) {
            gone = true; // purged meanwhile
            return util::ok_status();
          }
          auto msg = decode<pb::Message>(m->bytes(0, 0), "message " + id);
          if (!msg) {
            return msg.error();
          }
          b.message = std::move(msg.value());
          for (const auto& did : b.message.delivery_ids()) {
            auto d = conn.exec("SELECT record FROM deliveries WHERE id = $1",
                               pq::Params{}.text(did), "delivery");
            if (!d) {
              return d.error();
            }
            if (d->size() == 0) {
              return util::Error{Errc::invalid,
                                 fmt::format("message {}: its delivery {} is missing", id, did)};
            }
            auto delivery = decode<pb::Delivery>(d->bytes(0, 0), "delivery " + did);
            if (!delivery) {
              return delivery.error();
            }
            for (const auto& rid : delivery->reply_ids()) {
              auto r = conn.exec("SELECT record FROM replies WHERE id = $1", pq::Params{}.text(rid),
                                 "reply");
              if (!r) {
                return r.error();
              }
              if (r->size() == 0) {
                return util::Error{Errc::invalid,
                                   fmt::format("message {}: its reply {} is missing", id, rid)};
              }
              auto reply = decode<pb::Reply>(r->bytes(0, 0), "reply " + rid);
              if (!reply) {
                return reply.error();
              }
              b.replies.push_back(std::move(reply.value()));
            }
            b.deliveries.push_back(std::move(delivery.value()));
          }
          auto ev = conn.exec("SELECT record FROM events WHERE message = $1 ORDER BY seq",
                              pq::Params{}.text(id), "events");
          if (!ev) {
            return ev.error();
          }
          for (int e = 0; e < ev->size(); ++e) {
            auto event = decode<pb::Event>(ev->bytes(e, 0), "event");
            if (!event) {
              return event.error();
            }
            b.events.push_back(std::move(event.value()));
          }
          for (const auto& sha : bundle_blob_names(b.message, b.replies)) {
            auto blob = conn.exec("SELECT bytes FROM blobs WHERE sha256 = $1",
                                  pq::Params{}.text(sha), "blob");
            if (!blob) {
              return blob.error();
            }
            if (blob->size() == 0) {
              return util::Error{Errc::invalid,
                                 fmt::format("message {}: its blob {} is missing", id, sha)};
            }
            b.blobs.emplace(sha, std::string(blob->bytes(0, 0)));
          }
          return util::ok_status();
        },
        "ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!st) {
      return st.error();
    }
    if (gone) {
      continue;
    }
    ++visited;
    if (!fn(b)) {
      break;
    }
  }
  return visited;
}

Result<std::size_t> PgStore::export_loose(const std::function<bool(const LooseRecord&)>& fn)
{
  struct Source
  {
    LooseRecord::Kind kind;
    const char* sql;
  };
  static const Source sources[] = {
      {LooseRecord::Kind::token, "SELECT hash, record FROM tokens ORDER BY hash"},
      {LooseRecord::Kind::key, "SELECT key, delivery FROM idempotency ORDER BY key"},
      {LooseRecord::Kind::consultation,
       "SELECT reference, record FROM consultations ORDER BY reference"},
      {LooseRecord::Kind::credential, "SELECT key, record FROM credentials ORDER BY key"},
  };
  std::size_t visited = 0;
  for (const auto& s : sources) {
    auto rows = query(s.sql, pq::Params{}, "loose records");
    if (!rows) {
      return rows.error();
    }
    for (int i = 0; i < rows->size(); ++i) {
      LooseRecord r{s.kind, rows->text(i, 0), std::string(rows->bytes(i, 1))};
      if (s.kind != LooseRecord::Kind::key) {
        // Read as the store reads it (repaired, or refused when of a newer schema), exported
        // in this pli's bytes.
        util::Status st = util::ok_status();
        auto reencode = [&](auto parsed) {
          if (!parsed) {
            st = parsed.error();
          } else {
            r.value = parsed->SerializeAsString();
          }
        };
        if (s.kind == LooseRecord::Kind::token) {
          reencode(decode<pb::Token>(r.value, "token"));
        } else if (s.kind == LooseRecord::Kind::consultation) {
          reencode(decode<pb::Consultation>(r.value, "consultation"));
        } else {
          reencode(decode<pb::Credential>(r.value, "credential"));
        }
        if (!st) {
          return st.error();
        }
      }
      ++visited;
      if (!fn(r)) {
        return visited;
      }
    }
  }
  return visited;
}

Result<Imported> PgStore::import_message(const MessageBundle& b)
{
  if (auto st = check_bundle(b); !st) {
    return st.error();
  }
  const pb::Message& msg = b.message;
  Imported outcome = Imported::same;
  auto st = in_transaction([&](pq::Conn& conn) -> util::Status {
    outcome = Imported::same;
    // The chain head row locks the message against every other writer of its events.
    auto here = conn.exec("SELECT record FROM messages WHERE id = $1 FOR UPDATE",
                          pq::Params{}.text(msg.id()), "message");
    if (!here) {
      return here.error();
    }
    std::size_t had = 0;
    if (here->size() == 0) {
      if (auto w = write_message(conn, msg, b.deliveries, b.blobs); !w) {
        return w;
      }
      outcome = Imported::added;
    } else {
      auto mine = decode<pb::Message>(here->bytes(0, 0), "message " + msg.id());
      if (!mine) {
        return mine.error();
      }
      if (!same_record(mine.value(), msg)) {
        return disagree(msg.id(), "it differs between the two stores");
      }
      auto head = conn.exec("SELECT seq FROM chain_heads WHERE message = $1 FOR UPDATE",
                            pq::Params{}.text(msg.id()), "event chain");
      if (!head) {
        return head.error();
      }
      auto ev = conn.exec("SELECT record FROM events WHERE message = $1 ORDER BY seq",
                          pq::Params{}.text(msg.id()), "events");
      if (!ev) {
        return ev.error();
      }
      had = static_cast<std::size_t>(ev->size());
      if (had > b.events.size()) {
        return disagree(msg.id(), "this store has more of its events");
      }
      for (std::size_t i = 0; i < had; ++i) {
        auto e = decode<pb::Event>(ev->bytes(static_cast<int>(i), 0), "event");
        if (!e) {
          return e.error();
        }
        if (e->hash() != b.events[i].hash()) {
          return disagree(msg.id(), fmt::format("event {} differs between the stores", i + 1));
        }
      }
      for (const auto& d : b.deliveries) {
        auto row = conn.exec("SELECT record FROM deliveries WHERE id = $1 FOR UPDATE",
                             pq::Params{}.text(d.id()), "delivery");
        if (!row) {
          return row.error();
        }
        if (row->size() == 0) {
          return disagree(msg.id(), fmt::format("delivery {} is missing here", d.id()));
        }
        if (row->bytes(0, 0) == d.SerializeAsString()) {
          continue;
        }
        auto up = conn.exec("UPDATE deliveries SET status = $2, record = $3 WHERE id = $1",
                            pq::Params{}
                                .text(d.id())
                                .i16(static_cast<std::int16_t>(d.status()))
                                .bytes(d.SerializeAsString()),
                            "delivery");
        if (!up) {
          return up.error();
        }
        outcome = Imported::extended;
      }
      if (auto w = put_blobs(conn, b.blobs); !w) {
        return w;
      }
    }
    for (std::size_t i = had; i < b.events.size(); ++i) {
      const auto& e = b.events[i];
      auto r = conn.exec("INSERT INTO events (message, seq, record) VALUES ($1, $2, $3)",
                         pq::Params{}
                             .text(msg.id())
                             .i32(static_cast<std::int32_t>(e.seq()))
                             .bytes(e.SerializeAsString()),
                         "event");
      if (!r) {
        return r.error();
      }
      outcome = outcome == Imported::same ? Imported::extended : outcome;
    }
    if (!b.events.empty() && had < b.events.size()) {
      auto r = conn.exec("INSERT INTO chain_heads (message, seq, hash) VALUES ($1, $2, $3) "
                         "ON CONFLICT (message) DO UPDATE SET seq = EXCLUDED.seq, "
                         "hash = EXCLUDED.hash",
                         pq::Params{}
                             .text(msg.id())
                             .i32(static_cast<std::int32_t>(b.events.back().seq()))
                             .text(b.events.back().hash()),
                         "event chain");
      if (!r) {
        return r.error();
      }
    }
    for (const auto& reply : b.replies) {
      std::vector<std::string> shas;
      for (const auto& a : reply.attachments()) {
        if (!a.sha256().empty()) {
          shas.push_back(a.sha256());
        }
      }
      auto r = conn.exec("INSERT INTO replies (id, delivery, message, blobs, record) "
                         "VALUES ($1, $2, $3, $4::text[], $5) ON CONFLICT (id) DO NOTHING",
                         pq::Params{}
                             .text(reply.id())
                             .text(reply.delivery())
                             .text(reply.message())
                             .literal(pq::text_array(shas))
                             .bytes(reply.SerializeAsString()),
                         "reply");
      if (!r) {
        return r.error();
      }
      if (r->affected() > 0) {
        outcome = outcome == Imported::same ? Imported::extended : outcome;
      }
    }
    return util::ok_status();
  });
  if (!st) {
    return st.error();
  }
  return outcome;
}

Result<std::size_t> PgStore::import_loose(const std::vector<LooseRecord>& batch)
{
  for (const auto& r : batch) {
    if (!storable_key(r.key)) {
      return util::Error{Errc::invalid, "a loose record's key cannot be stored"};
    }
    if (auto st = check_loose(r); !st) {
      return st.error();
    }
  }
  std::size_t written = 0;
  auto st = in_transaction([&](pq::Conn& conn) -> util::Status {
    written = 0;
    for (const auto& r : batch) {
      Result<pq::Rows> done = util::Error{Errc::io, "not run"};
      switch (r.kind) {
      case LooseRecord::Kind::token: {
        auto t = decode<pb::Token>(r.value, "token");
        done = conn.exec("INSERT INTO tokens (hash, delivery, record) VALUES ($1, $2, $3) "
                         "ON CONFLICT (hash) DO NOTHING",
                         pq::Params{}.text(r.key).text(t->delivery()).bytes(r.value), "token");
        if (done && done->affected() == 0) {
          auto mine = conn.exec("SELECT record FROM tokens WHERE hash = $1",
                                pq::Params{}.text(r.key), "token");
          if (!mine) {
            return mine.error();
          }
          auto m = decode<pb::Token>(mine->bytes(0, 0), "token");
          if (!m || m->delivery() != t->delivery() || m->reply() != t->reply()) {
            return util::Error{Errc::conflict,
                               fmt::format("token {} (another delivery in this store)", r.key)};
          }
        }
        break;
      }
      case LooseRecord::Kind::key: {
        done = conn.exec("INSERT INTO idempotency (key, delivery) VALUES ($1, $2) "
                         "ON CONFLICT (key) DO NOTHING",
                         pq::Params{}.text(r.key).text(r.value), "key");
        if (done && done->affected() == 0) {
          auto mine = conn.exec("SELECT delivery FROM idempotency WHERE key = $1",
                                pq::Params{}.text(r.key), "key");
          if (!mine) {
            return mine.error();
          }
          if (mine->size() == 0 || mine->text(0, 0) != r.value) {
            return util::Error{Errc::conflict,
                               fmt::format("key {} (another delivery in this store)", r.key)};
          }
        }
        break;
      }
      case LooseRecord::Kind::consultation: {
        auto here = conn.exec("SELECT record FROM consultations WHERE reference = $1",
                              pq::Params{}.text(r.key), "consultation");
        if (!here) {
          return here.error();
        }
        if (here->size() > 0 && here->bytes(0, 0) == r.value) {
          continue;
        }
        done = conn.exec("INSERT INTO consultations (reference, record) VALUES ($1, $2) "
                         "ON CONFLICT (reference) DO UPDATE SET record = EXCLUDED.record",
                         pq::Params{}.text(r.key).bytes(r.value), "consultation");
        break;
      }
      case LooseRecord::Kind::credential: {
        auto c = decode<pb::Credential>(r.value, "credential");
        done =
            conn.exec("INSERT INTO credentials (key, expires_at, record) VALUES ($1, $2, $3) "
                      "ON CONFLICT (key) DO NOTHING",
                      pq::Params{}.text(r.key).i64(c->expires_at()).bytes(r.value), "credential");
        break;
      }
      }
      if (!done) {
        return done.error();
      }
      written += done->affected();
    }
    return util::ok_status();
  });
  if (!st) {
    return st.error();
  }
  return written;
}

} // namespace pli::store::detail
