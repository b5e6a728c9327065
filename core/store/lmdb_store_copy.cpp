// LmdbStore's half of `pli store copy` (store.hpp: export_messages, export_loose,
// import_message, import_loose): every record read as stored and written back with the
// indexes and counts an LMDB store keeps beside them.
#include "core/store/bundle.hpp"
#include "core/store/lmdb_store_impl.hpp"

namespace pli::store::detail {

Result<std::size_t> LmdbStore::export_messages(const std::function<bool(const MessageBundle&)>& fn)
{
  // The ids first (a short read transaction), then one snapshot per message: a long read
  // transaction would keep every page it sees from being reused while the daemons write.
  std::vector<std::string> ids;
  {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    int rc = lmdb::for_each_entry(txn.get(), m_messages,
                                  [&](MDB_cursor*, std::string_view key, std::string_view) {
                                    ids.emplace_back(key);
                                    return 0;
                                  });
    if (rc != 0) {
      return lmdb_error(rc, "messages");
    }
  }
  std::size_t visited = 0;
  for (const auto& id : ids) {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    auto m = get_in<pb::Message>(txn, m_messages, id, "message");
    if (!m) {
      if (m.error().code == Errc::not_found) {
        continue; // purged meanwhile
      }
      return m.error();
    }
    MessageBundle b;
    b.message = std::move(m.value());
    for (const auto& did : b.message.delivery_ids()) {
      auto d = get_in<pb::Delivery>(txn, m_deliveries, did, "delivery");
      if (!d) {
        return d.error();
      }
      for (const auto& rid : d->reply_ids()) {
        auto r = get_in<pb::Reply>(txn, m_replies, rid, "reply");
        if (!r) {
          return r.error();
        }
        b.replies.push_back(std::move(r.value()));
      }
      b.deliveries.push_back(std::move(d.value()));
    }
    auto events = events_in(txn, id);
    if (!events) {
      return events.error();
    }
    b.events = std::move(events.value());
    for (const auto& sha : bundle_blob_names(b.message, b.replies)) {
      MDB_val k = val(sha);
      MDB_val v;
      if (int brc = mdb_get(txn.get(), m_blobs, &k, &v); brc != 0) {
        return brc == MDB_NOTFOUND
                   ? util::Error{Errc::invalid,
                                 fmt::format("message {}: its blob {} is missing", id, sha)}
                   : lmdb_error(brc, "blob");
      }
      b.blobs.emplace(sha, std::string(view(v)));
    }
    ++visited;
    if (!fn(b)) {
      break;
    }
  }
  return visited;
}

Result<std::size_t> LmdbStore::export_loose(const std::function<bool(const LooseRecord&)>& fn)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  std::size_t visited = 0;
  bool stop = false;
  std::optional<util::Error> bad;
  auto visit = [&](MDB_dbi dbi, LooseRecord::Kind kind, auto parse) -> int {
    if (stop || dbi == 0) {
      return 0;
    }
    return lmdb::for_each_entry(txn.get(), dbi,
                                [&](MDB_cursor*, std::string_view key, std::string_view value) {
                                  LooseRecord r{kind, std::string(key), std::string(value)};
                                  if (auto st = parse(r); !st) {
                                    bad = st.error();
                                    return MDB_INCOMPATIBLE;
                                  }
                                  ++visited;
                                  if (!fn(r)) {
                                    stop = true;
                                    return MDB_NOTFOUND;
                                  }
                                  return 0;
                                });
  };
  // Each record is read as the store reads it (a damaged one repaired, a newer schema
  // refused) and exported in this pli's bytes.
  auto record = [](auto tag) {
    return [](LooseRecord& r) -> util::Status {
      using Pb = decltype(tag);
      auto p = decode<Pb>(r.value, r.key);
      if (!p) {
        return p.error();
      }
      r.value = p->SerializeAsString();
      return util::ok_status();
    };
  };
  auto plain = [](LooseRecord&) { return util::ok_status(); };
  int rc = visit(m_tokens, LooseRecord::Kind::token, record(pb::Token{}));
  rc = rc != 0 ? rc : visit(m_idem, LooseRecord::Kind::key, plain);
  rc = rc != 0
           ? rc
           : visit(m_consultations, LooseRecord::Kind::consultation, record(pb::Consultation{}));
  rc = rc != 0 ? rc : visit(m_credentials, LooseRecord::Kind::credential, record(pb::Credential{}));
  if (bad) {
    return *bad;
  }
  if (rc != 0 && rc != MDB_NOTFOUND) {
    return lmdb_error(rc, "loose records");
  }
  return visited;
}

Result<Imported> LmdbStore::import_message(const MessageBundle& b)
{
  const pb::Message& msg = b.message;
  if (auto st = check_bundle(b); !st) {
    return st.error();
  }
  Imported outcome = Imported::same;
  const WriteFn apply = [&](lmdb::Txn& txn) -> util::Status {
    auto here = get_in<pb::Message>(txn, m_messages, msg.id(), "message");
    if (!here && here.error().code != Errc::not_found) {
      return here.error();
    }
    std::vector<pb::Event> had;
    if (!here) {
      std::vector<std::pair<pb::Delivery, std::string>> deliveries;
      for (const auto& d : b.deliveries) {
        deliveries.emplace_back(d, d.SerializeAsString());
      }
      const auto words = index_words(msg.subject() + "\n" + msg.text_body());
      if (auto st = write_message(txn, msg, msg.SerializeAsString(), deliveries, b.blobs, words);
          !st) {
        return st;
      }
      outcome = Imported::added;
    } else {
      if (!same_record(here.value(), msg)) {
        return conflict(fmt::format("message {} (it differs between the two stores)", msg.id()));
      }
      auto events = events_in(txn, msg.id());
      if (!events) {
        return events.error();
      }
      had = std::move(events.value());
      if (had.size() > b.events.size()) {
        return conflict(fmt::format("message {} (this store has more of its events)", msg.id()));
      }
      for (std::size_t i = 0; i < had.size(); ++i) {
        if (had[i].hash() != b.events[i].hash()) {
          return conflict(
              fmt::format("message {} (event {} differs between the stores)", msg.id(), i + 1));
        }
      }
      auto head = read_message_head(txn, msg.id());
      if (!head) {
        return head.error();
      }
      for (const auto& d : b.deliveries) {
        auto mine = get_in<pb::Delivery>(txn, m_deliveries, d.id(), "delivery");
        if (!mine) {
          return mine.error();
        }
        if (same_record(mine.value(), d)) {
          continue;
        }
        if (int wrc = put(txn, m_deliveries, d.id(), d.SerializeAsString()); wrc != 0) {
          return lmdb_error(wrc, "delivery");
        }
        const auto from = static_cast<model::Status>(mine->status());
        const auto to = static_cast<model::Status>(d.status());
        if (from != to) {
          if (int mrc = move_status(txn, d, head.value(), from, to); mrc != 0) {
            return lmdb_error(mrc, "status index");
          }
        }
        outcome = Imported::extended;
      }
      for (const auto& [sha, bytes] : b.blobs) {
        int brc = put_new(txn, m_blobs, sha, bytes);
        if (brc != 0 && brc != MDB_KEYEXIST) {
          return lmdb_error(brc, "blob");
        }
      }
    }
    for (std::size_t i = had.size(); i < b.events.size(); ++i) {
      const auto& e = b.events[i];
      if (int rc = put_new(txn, m_events, seq_key(e.message(), e.seq()), e.SerializeAsString());
          rc != 0) {
        return rc == MDB_KEYEXIST ? conflict("event") : lmdb_error(rc, "event");
      }
      outcome = outcome == Imported::same ? Imported::extended : outcome;
    }
    for (const auto& r : b.replies) {
      int rc = put_new(txn, m_replies, r.id(), r.SerializeAsString());
      if (rc == MDB_KEYEXIST) {
        continue;
      }
      if (rc != 0) {
        return lmdb_error(rc, "reply");
      }
      outcome = outcome == Imported::same ? Imported::extended : outcome;
    }
    return util::ok_status();
  };
  if (auto st = group_write(apply); !st) {
    return st.error();
  }
  return outcome;
}

Result<std::size_t> LmdbStore::import_loose(const std::vector<LooseRecord>& batch)
{
  std::size_t written = 0;
  const WriteFn apply = [&](lmdb::Txn& txn) -> util::Status {
    written = 0;
    for (const auto& r : batch) {
      MDB_dbi dbi = 0;
      switch (r.kind) {
      case LooseRecord::Kind::token:
        dbi = m_tokens;
        break;
      case LooseRecord::Kind::key:
        dbi = m_idem;
        break;
      case LooseRecord::Kind::consultation:
        dbi = m_consultations;
        break;
      case LooseRecord::Kind::credential:
        dbi = m_credentials;
        break;
      }
      if (dbi == 0) {
        return util::Error{Errc::io, "the credentials database is not open"};
      }
      if (auto st = check_loose(r); !st) {
        return st;
      }
      MDB_val k = val(r.key);
      MDB_val v;
      int rc =
          r.key.empty() || r.key.size() > 511 ? MDB_BAD_VALSIZE : mdb_get(txn.get(), dbi, &k, &v);
      if (rc == 0) {
        if (view(v) == r.value) {
          continue;
        }
        if (r.kind == LooseRecord::Kind::token) {
          auto mine = decode<pb::Token>(view(v), "token");
          auto theirs = decode<pb::Token>(r.value, "token");
          if (mine && theirs && mine->delivery() == theirs->delivery() &&
              mine->reply() == theirs->reply()) {
            continue; // the same link (its record written by another version)
          }
        }
        if (r.kind == LooseRecord::Kind::key || r.kind == LooseRecord::Kind::token) {
          return conflict(fmt::format("{} {} (another delivery in this store)",
                                      r.kind == LooseRecord::Kind::key ? "key" : "token", r.key));
        }
        if (r.kind == LooseRecord::Kind::credential) {
          continue; // the same secret's hash: the same credential
        }
      } else if (rc != MDB_NOTFOUND) {
        return lmdb_error(rc, "loose record");
      }
      if (rc = put(txn, dbi, r.key, r.value); rc != 0) {
        return lmdb_error(rc, "loose record");
      }
      ++written;
    }
    return util::ok_status();
  };
  if (auto st = group_write(apply); !st) {
    return st.error();
  }
  return written;
}

} // namespace pli::store::detail
