// LmdbStore: the embedded store, one LMDB environment shared by the milter, linkd and
// the CLI on one host. Opened with MDB_NOTLS so that transactions are not tied to the
// threads of libmilter's or libmicrohttpd's pools; each transaction lives inside one
// call. Writers are serialised by LMDB's lock; every commit is synced to disk.
//
// Databases (keys -> values):
//   messages       message id -> pb::Message
//   deliveries     delivery id -> pb::Delivery
//   events         message id, 0, seq (4 bytes BE) -> pb::Event
//   tokens         token hash (hex) -> pb::Token
//   blobs          sha256 (hex) -> bytes (originals and attachments, stored once)
//   consultations  reference -> pb::Consultation
//   replies        reply id -> pb::Reply
//   msgids         Message-ID header -> message id
//   idempotency    key -> delivery id
//   idx_sent       inv(sent_at) delivery id -> ""
//   idx_status     status byte, inv(sent_at), delivery id -> ""
//   idx_type       type byte, inv(sent_at), delivery id -> ""
//   idx_consult    reference, 0, inv(sent_at), delivery id -> ""
//   idx_word       word, 0, inv(sent_at), delivery id -> ""
//   counts         index letter, prefix, UTC day (8 bytes BE) -> number of index entries
//                  (s sent, S status, T type, C consultation), kept in the same transactions
//                  as the indexes, so that `list` totals need no scan of whole days
// inv(t) is (INT64_MAX - t) as 8 bytes big-endian, so that a forward scan is newest first.
#include "core/store/credentials.hpp"
#include "core/store/evidence.hpp"
#include "core/store/lmdb.hpp"
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

namespace pli::store {

namespace {

using lmdb::val;
using lmdb::view;

constexpr std::uint32_t k_schema_version = 1;

util::Error lmdb_error(int rc, std::string_view what)
{
  Errc code = rc == MDB_MAP_FULL ? Errc::full : rc == MDB_NOTFOUND ? Errc::not_found : Errc::io;
  return util::Error{static_cast<int>(code), fmt::format("{}: {}", what, mdb_strerror(rc))};
}

util::Error not_found(std::string_view what)
{
  return util::Error{static_cast<int>(Errc::not_found), std::string(what)};
}

std::string inv_time(util::Micros t)
{
  std::uint64_t v = static_cast<std::uint64_t>(INT64_MAX - t);
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

util::Micros from_inv_time(std::string_view s)
{
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<unsigned char>(s[static_cast<std::size_t>(i)]);
  }
  return INT64_MAX - static_cast<util::Micros>(v);
}

std::string seq_key(const std::string& message, std::uint32_t seq)
{
  std::string k = message;
  k.push_back('\0');
  for (int shift = 24; shift >= 0; shift -= 8) {
    k.push_back(static_cast<char>((seq >> shift) & 0xff));
  }
  return k;
}

template <typename Pb> util::Result<Pb> decode(std::string_view bytes, std::string_view what)
{
  Pb record;
  if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return util::Error{static_cast<int>(Errc::invalid),
                       fmt::format("{}: undecodable record", what)};
  }
  if (record.version() != k_schema_version) {
    return util::Error{
        static_cast<int>(Errc::invalid),
        fmt::format("{}: schema version {} is not supported by this pli", what, record.version())};
  }
  return record;
}

class LmdbStore final : public Store
{
public:
  explicit LmdbStore(lmdb::Env env) : m_env(std::move(env)) {}

  util::Status open_dbs(bool read_only)
  {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), read_only ? MDB_RDONLY : 0); rc != 0) {
      return lmdb_error(rc, "opening the store");
    }
    const std::pair<const char*, MDB_dbi*> dbs[] = {
        {"messages", &m_messages}, {"deliveries", &m_deliveries},
        {"events", &m_events},     {"tokens", &m_tokens},
        {"blobs", &m_blobs},       {"consultations", &m_consultations},
        {"msgids", &m_msgids},     {"idempotency", &m_idem},
        {"idx_sent", &m_idx_sent}, {"idx_status", &m_idx_status},
        {"idx_type", &m_idx_type}, {"idx_consult", &m_idx_consult},
        {"idx_word", &m_idx_word}, {"replies", &m_replies}};
    for (const auto& [name, slot] : dbs) {
      if (int rc = mdb_dbi_open(txn.get(), name, read_only ? 0 : MDB_CREATE, slot); rc != 0) {
        return lmdb_error(rc, fmt::format("opening database '{}'", name));
      }
    }
    // Per-day counts (added after the first stores were made): built once from the indexes.
    int crc = mdb_dbi_open(txn.get(), "counts", read_only ? 0 : MDB_CREATE, &m_counts);
    if (crc != 0 && !(read_only && crc == MDB_NOTFOUND)) {
      return lmdb_error(crc, "opening database 'counts'");
    }
    if (crc == 0) {
      MDB_val k = val(k_counts_built);
      MDB_val v;
      int rc = mdb_get(txn.get(), m_counts, &k, &v);
      if (rc == MDB_NOTFOUND && !read_only) {
        if (rc = rebuild_counts(txn); rc != 0) {
          return lmdb_error(rc, "building the list counts");
        }
        rc = 0;
      }
      m_have_counts = rc == 0;
    }
    if (int rc = credentials::open(txn.get(), read_only, &m_credentials);
        rc != 0 && !(read_only && rc == MDB_NOTFOUND)) {
      return lmdb_error(rc, "opening database 'credentials'");
    }
    if (int rc = txn.commit(); rc != 0) {
      return lmdb_error(rc, "opening the store");
    }
    return util::ok_status();
  }

  Result<util::Unit> create_message(const NewMessage& m) override
  {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    pb::Message msg = m.message;
    msg.set_version(k_schema_version);
    if (auto rc = put_new(txn, m_messages, msg.id(), msg.SerializeAsString()); rc != 0) {
      return rc == MDB_KEYEXIST ? conflict("message " + msg.id()) : lmdb_error(rc, "message");
    }
    for (const auto& [sha, bytes] : m.blobs) {
      int rc = put_new(txn, m_blobs, sha, bytes);
      if (rc != 0 && rc != MDB_KEYEXIST) {
        return lmdb_error(rc, "blob");
      }
    }
    if (!msg.message_id().empty()) {
      if (int rc = put(txn, m_msgids, msg.message_id(), msg.id()); rc != 0) {
        return lmdb_error(rc, "message-id index");
      }
    }
    const std::string inv = inv_time(msg.sent_at());
    std::vector<std::string> words = index_words(msg.subject() + "\n" + msg.text_body());
    for (pb::Delivery d : m.deliveries) {
      d.set_version(k_schema_version);
      d.set_message(msg.id());
      if (d.status() == 0) {
        d.set_status(static_cast<std::uint32_t>(model::Status::sending));
      }
      if (int rc = put_new(txn, m_deliveries, d.id(), d.SerializeAsString()); rc != 0) {
        return rc == MDB_KEYEXIST ? conflict("delivery " + d.id()) : lmdb_error(rc, "delivery");
      }
      if (!d.token_hash().empty()) {
        pb::Token t;
        t.set_version(k_schema_version);
        t.set_purpose(1);
        t.set_delivery(d.id());
        t.set_created_at(d.created_at());
        t.set_expires_at(d.expires_at());
        if (int rc = put_new(txn, m_tokens, d.token_hash(), t.SerializeAsString()); rc != 0) {
          return rc == MDB_KEYEXIST ? conflict("token") : lmdb_error(rc, "token");
        }
      }
      if (!d.idempotency_key().empty()) {
        if (int rc = put(txn, m_idem, d.idempotency_key(), d.id()); rc != 0) {
          return lmdb_error(rc, "idempotency index");
        }
      }
      std::string tail = inv + d.id();
      int rc = put(txn, m_idx_sent, tail, "");
      rc = rc != 0
               ? rc
               : put(txn, m_idx_status, std::string(1, static_cast<char>(d.status())) + tail, "");
      rc = rc != 0 ? rc
                   : put(txn, m_idx_type, std::string(1, static_cast<char>(msg.type())) + tail, "");
      if (rc == 0 && !msg.consultation().empty()) {
        rc = put(txn, m_idx_consult, msg.consultation() + std::string(1, '\0') + tail, "");
      }
      for (const auto& w : words) {
        if (rc == 0) {
          rc = put(txn, m_idx_word, w + std::string(1, '\0') + tail, "");
        }
      }
      rc = rc != 0 ? rc : count_delivery(txn.get(), msg, static_cast<model::Status>(d.status()), 1);
      if (rc != 0) {
        return lmdb_error(rc, "indexes");
      }
    }
    if (int rc = txn.commit(); rc != 0) {
      return lmdb_error(rc, "commit");
    }
    return util::Unit{};
  }

  Result<std::vector<pb::Event>> append_events(const std::vector<NewEvent>& events) override
  {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    std::vector<pb::Event> stored;
    for (const auto& ne : events) {
      if (!ne.dedupe_key.empty()) {
        const std::string key = "event:" + ne.dedupe_key;
        MDB_val k = val(key);
        MDB_val v;
        int rc = mdb_get(txn.get(), m_idem, &k, &v);
        if (rc == 0) {
          continue; // recorded before
        }
        if (rc != MDB_NOTFOUND) {
          return lmdb_error(rc, "event dedupe");
        }
        if (rc = put(txn, m_idem, key, ne.delivery); rc != 0) {
          return lmdb_error(rc, "event dedupe");
        }
      }
      auto delivery = get_in<pb::Delivery>(txn, m_deliveries, ne.delivery, "delivery");
      if (!delivery) {
        return delivery.error();
      }
      auto message = get_in<pb::Message>(txn, m_messages, delivery->message(), "message");
      if (!message) {
        return message.error();
      }
      pb::Event e;
      e.set_version(k_schema_version);
      e.set_message(message->id());
      e.set_delivery(delivery->id());
      e.set_seq(message->event_count() + 1);
      e.set_kind(static_cast<std::uint32_t>(ne.kind));
      e.set_at(ne.at);
      for (const auto& [k, v] : ne.detail) {
        (*e.mutable_detail())[k] = v;
      }
      e.set_prev_hash(message->last_event_hash());
      e.set_hash(event_hash(e));
      if (int rc = put_new(txn, m_events, seq_key(e.message(), e.seq()), e.SerializeAsString());
          rc != 0) {
        return lmdb_error(rc, "event");
      }
      message->set_event_count(e.seq());
      message->set_last_event_hash(e.hash());
      if (int rc = put(txn, m_messages, message->id(), message->SerializeAsString()); rc != 0) {
        return lmdb_error(rc, "message");
      }
      auto old_status = static_cast<model::Status>(delivery->status());
      auto new_status = model::apply_event(old_status, ne.kind);
      record_times(*delivery, ne.kind, ne.at);
      delivery->set_status(static_cast<std::uint32_t>(new_status));
      if (int rc = put(txn, m_deliveries, delivery->id(), delivery->SerializeAsString()); rc != 0) {
        return lmdb_error(rc, "delivery");
      }
      if (new_status != old_status) {
        std::string tail = inv_time(message->sent_at()) + delivery->id();
        std::string old_key = std::string(1, static_cast<char>(old_status)) + tail;
        MDB_val k = val(old_key);
        int rc = mdb_del(txn.get(), m_idx_status, &k, nullptr);
        if (rc != 0 && rc != MDB_NOTFOUND) {
          return lmdb_error(rc, "status index");
        }
        if (rc = put(txn, m_idx_status, std::string(1, static_cast<char>(new_status)) + tail, "");
            rc != 0) {
          return lmdb_error(rc, "status index");
        }
        const std::string t = day_of(message->sent_at());
        rc = bump(txn.get(), "S" + std::string(1, static_cast<char>(old_status)) + t, -1);
        rc = rc != 0 ? rc
                     : bump(txn.get(), "S" + std::string(1, static_cast<char>(new_status)) + t, 1);
        if (rc != 0) {
          return lmdb_error(rc, "list counts");
        }
      }
      stored.push_back(std::move(e));
    }
    if (int rc = txn.commit(); rc != 0) {
      return lmdb_error(rc, "commit");
    }
    return stored;
  }

  Result<util::Unit> add_token(const std::string& delivery, const std::string& token_hash,
                               util::Micros expires_at) override
  {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    auto d = get_in<pb::Delivery>(txn, m_deliveries, delivery, "delivery");
    if (!d) {
      return d.error();
    }
    pb::Token t;
    t.set_version(k_schema_version);
    t.set_purpose(1);
    t.set_delivery(delivery);
    t.set_created_at(util::now_micros());
    t.set_expires_at(expires_at);
    if (int rc = put_new(txn, m_tokens, token_hash, t.SerializeAsString()); rc != 0) {
      return rc == MDB_KEYEXIST ? conflict("token") : lmdb_error(rc, "token");
    }
    if (int rc = txn.commit(); rc != 0) {
      return lmdb_error(rc, "commit");
    }
    return util::Unit{};
  }

  Result<pb::Message> get_message(const std::string& id) override
  {
    return read_record<pb::Message>(m_messages, id, "message");
  }

  Result<pb::Delivery> get_delivery(const std::string& id) override
  {
    return read_record<pb::Delivery>(m_deliveries, id, "delivery");
  }

  Result<pb::Token> get_token(const std::string& hash) override
  {
    return read_record<pb::Token>(m_tokens, hash, "token");
  }

  Result<pb::Consultation> get_consultation(const std::string& reference) override
  {
    return read_record<pb::Consultation>(m_consultations, reference, "consultation");
  }

  Result<std::string> get_blob(const std::string& sha) override
  {
    return read_raw(m_blobs, sha, "blob");
  }

  Result<std::string> find_by_message_id(const std::string& message_id) override
  {
    return read_raw(m_msgids, message_id, "Message-ID");
  }

  Result<std::string> find_by_idempotency_key(const std::string& key) override
  {
    return read_raw(m_idem, key, "idempotency key");
  }

  Result<std::vector<pb::Event>> events_of_message(const std::string& message_id) override
  {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    std::vector<pb::Event> out;
    std::string prefix = message_id + std::string(1, '\0');
    lmdb::Cursor cur(txn.get(), m_events);
    if (cur.rc() != 0) {
      return lmdb_error(cur.rc(), "cursor");
    }
    MDB_val k = val(prefix);
    MDB_val v;
    for (int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      if (view(k).substr(0, prefix.size()) != prefix) {
        break;
      }
      auto e = decode<pb::Event>(view(v), "event");
      if (!e) {
        return e.error();
      }
      out.push_back(std::move(e.value()));
    }
    return out;
  }

  Result<util::Unit> create_reply(const NewReply& r) override
  {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    auto d = get_in<pb::Delivery>(txn, m_deliveries, r.reply.delivery(), "delivery");
    if (!d) {
      return d.error();
    }
    pb::Reply rec = r.reply;
    rec.set_version(k_schema_version);
    rec.set_message(d->message());
    if (int rc = put_new(txn, m_replies, rec.id(), rec.SerializeAsString()); rc != 0) {
      return rc == MDB_KEYEXIST ? conflict("reply " + rec.id()) : lmdb_error(rc, "reply");
    }
    for (const auto& [sha, bytes] : r.blobs) {
      int rc = put_new(txn, m_blobs, sha, bytes);
      if (rc != 0 && rc != MDB_KEYEXIST) {
        return lmdb_error(rc, "blob");
      }
    }
    if (!rec.token_hash().empty()) {
      pb::Token t;
      t.set_version(k_schema_version);
      t.set_purpose(2);
      t.set_delivery(d->id());
      t.set_reply(rec.id());
      t.set_created_at(rec.at());
      t.set_expires_at(r.token_expires_at);
      if (int rc = put_new(txn, m_tokens, rec.token_hash(), t.SerializeAsString()); rc != 0) {
        return rc == MDB_KEYEXIST ? conflict("token") : lmdb_error(rc, "token");
      }
    }
    d->add_reply_ids(rec.id());
    if (int rc = put(txn, m_deliveries, d->id(), d->SerializeAsString()); rc != 0) {
      return lmdb_error(rc, "delivery");
    }
    if (int rc = txn.commit(); rc != 0) {
      return lmdb_error(rc, "commit");
    }
    return util::Unit{};
  }

  Result<pb::Reply> get_reply(const std::string& id) override
  {
    return read_record<pb::Reply>(m_replies, id, "reply");
  }

  Result<util::Unit> put_consultation(const pb::Consultation& c) override
  {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    pb::Consultation rec = c;
    rec.set_version(k_schema_version);
    if (int rc = put(txn, m_consultations, rec.reference(), rec.SerializeAsString()); rc != 0) {
      return lmdb_error(rc, "consultation");
    }
    if (int rc = txn.commit(); rc != 0) {
      return lmdb_error(rc, "commit");
    }
    return util::Unit{};
  }

  Result<ListResult> list(const Query& q) override;
  Result<std::size_t> for_each(const Query& q,
                               const std::function<bool(const ListItem&)>& fn) override;
  Result<PurgeResult> purge(util::Micros before, PurgeMode mode) override;

  // The buyers' area (credentials.cpp).
  Result<util::Unit> put_credential(const std::string& key, const pb::Credential& c,
                                    util::Micros now) override
  {
    return credentials::put(m_env.get(), m_credentials, key, c, now);
  }
  Result<pb::Credential> get_credential(const std::string& key) override
  {
    return credentials::get(m_env.get(), m_credentials, key);
  }
  Result<pb::Credential> take_credential(const std::string& key) override
  {
    return credentials::take(m_env.get(), m_credentials, key);
  }

private:
  static util::Error conflict(const std::string& what)
  {
    return util::Error{static_cast<int>(Errc::conflict), what + " already exists"};
  }

  static void record_times(pb::Delivery& d, model::EventKind kind, util::Micros at)
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

  int put(lmdb::Txn& txn, MDB_dbi dbi, std::string_view key, std::string_view value,
          unsigned int flags = 0)
  {
    if (key.empty() || key.size() > 511) {
      return MDB_BAD_VALSIZE;
    }
    MDB_val k = val(key);
    MDB_val v = val(value);
    return mdb_put(txn.get(), dbi, &k, &v, flags);
  }

  int put_new(lmdb::Txn& txn, MDB_dbi dbi, std::string_view key, std::string_view value)
  {
    return put(txn, dbi, key, value, MDB_NOOVERWRITE);
  }

  template <typename Pb>
  util::Result<Pb> get_in(lmdb::Txn& txn, MDB_dbi dbi, const std::string& key,
                          std::string_view what)
  {
    if (key.empty() || key.size() > 511) {
      return not_found(fmt::format("no {} '{}'", what, key));
    }
    MDB_val k = val(key);
    MDB_val v;
    int rc = mdb_get(txn.get(), dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
      return not_found(fmt::format("no {} '{}'", what, key));
    }
    if (rc != 0) {
      return lmdb_error(rc, what);
    }
    return decode<Pb>(view(v), what);
  }

  template <typename Pb>
  util::Result<Pb> read_record(MDB_dbi dbi, const std::string& key, std::string_view what)
  {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    return get_in<Pb>(txn, dbi, key, what);
  }

  util::Result<std::string> read_raw(MDB_dbi dbi, const std::string& key, std::string_view what)
  {
    if (key.empty() || key.size() > 511) {
      return not_found(fmt::format("no {} '{}'", what, key));
    }
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    MDB_val k = val(key);
    MDB_val v;
    int rc = mdb_get(txn.get(), dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
      return not_found(fmt::format("no {} '{}'", what, key));
    }
    if (rc != 0) {
      return lmdb_error(rc, what);
    }
    return std::string(view(v));
  }

  // A row of a query: its send time, delivery id, and the records when they were read.
  using RowFn =
      std::function<bool(util::Micros, std::string_view, const pb::Delivery*, const pb::Message*)>;
  util::Status walk(lmdb::Txn& txn, const Query& q, bool need_records, const RowFn& fn);

  // "YYYY" day of `t` (UTC days since the epoch, 8 bytes BE) for the counts' keys.
  static util::Micros day_number(util::Micros t)
  {
    constexpr util::Micros k_day_us = 86400LL * 1000000LL;
    return t >= 0 ? t / k_day_us : -((-t + k_day_us - 1) / k_day_us);
  }
  static std::string day_of(util::Micros t) { return day_bytes(day_number(t)); }
  static std::string day_bytes(util::Micros day)
  {
    std::string out(8, '\0');
    auto v = static_cast<std::uint64_t>(day) ^ (1ULL << 63); // ordered for negative days too
    for (int i = 7; i >= 0; --i) {
      out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
      v >>= 8;
    }
    return out;
  }

  // Adds `delta` to the count under `key` (removed when it reaches 0). Returns an LMDB code.
  int bump(MDB_txn* txn, const std::string& key, std::int64_t delta)
  {
    if (m_counts == 0) {
      return 0;
    }
    MDB_val k = val(key);
    MDB_val v;
    std::int64_t n = 0;
    int rc = mdb_get(txn, m_counts, &k, &v);
    if (rc == 0 && v.mv_size == 8) {
      std::memcpy(&n, v.mv_data, 8);
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
      return rc;
    }
    n += delta;
    if (n <= 0) {
      rc = mdb_del(txn, m_counts, &k, nullptr);
      return rc == MDB_NOTFOUND ? 0 : rc;
    }
    MDB_val nv{8, &n};
    return mdb_put(txn, m_counts, &k, &nv, 0);
  }

  // The counts of one delivery's index entries (sent, status, type, consultation).
  int count_delivery(MDB_txn* txn, const pb::Message& m, model::Status status, std::int64_t delta)
  {
    const std::string t = day_of(m.sent_at());
    int rc = bump(txn, "s" + t, delta);
    rc = rc != 0 ? rc : bump(txn, "S" + std::string(1, static_cast<char>(status)) + t, delta);
    rc = rc != 0 ? rc : bump(txn, "T" + std::string(1, static_cast<char>(m.type())) + t, delta);
    if (rc == 0 && !m.consultation().empty()) {
      rc = bump(txn, "C" + m.consultation() + std::string(1, '\0') + t, delta);
    }
    return rc;
  }

  // Builds the counts from the indexes (a store made before they existed), once.
  int rebuild_counts(lmdb::Txn& txn)
  {
    std::map<std::string, std::int64_t> counts;
    const std::pair<MDB_dbi, char> indexes[] = {
        {m_idx_sent, 's'}, {m_idx_status, 'S'}, {m_idx_type, 'T'}, {m_idx_consult, 'C'}};
    for (const auto& [dbi, letter] : indexes) {
      lmdb::Cursor cur(txn.get(), dbi);
      if (cur.rc() != 0) {
        return cur.rc();
      }
      MDB_val k;
      MDB_val v;
      int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
      for (; rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
        std::string_view key = view(k);
        std::size_t plen = letter == 's' ? 0 : letter == 'C' ? key.find('\0') + 1 : 1;
        if (plen == 0 && letter == 'C') {
          continue;
        }
        if (key.size() < plen + 8) {
          continue;
        }
        ++counts[letter + std::string(key.substr(0, plen)) +
                 day_of(from_inv_time(key.substr(plen, 8)))];
      }
      if (rc != MDB_NOTFOUND) {
        return rc;
      }
    }
    for (const auto& [key, n] : counts) {
      MDB_val k = val(key);
      MDB_val v{8, const_cast<std::int64_t*>(&n)};
      if (int rc = mdb_put(txn.get(), m_counts, &k, &v, 0); rc != 0) {
        return rc;
      }
    }
    MDB_val k = val(k_counts_built);
    MDB_val v = val("1");
    return mdb_put(txn.get(), m_counts, &k, &v, 0);
  }

  // Entries of index `letter` under `prefix` sent in [since, until), from the counts for
  // whole days and from the index itself for the partial days at the ends.
  Result<std::size_t> count_range(lmdb::Txn& txn, char letter, MDB_dbi index,
                                  const std::string& prefix, std::optional<util::Micros> since,
                                  std::optional<util::Micros> until);

  // The distinct indexed words starting with `prefix`, up to `max` + 1 of them (one B-tree
  // search per word). Returns an LMDB code.
  int words_with_prefix(MDB_txn* txn, const std::string& prefix, std::size_t max,
                        std::vector<std::string>& out)
  {
    lmdb::Cursor cur(txn, m_idx_word);
    if (cur.rc() != 0) {
      return cur.rc();
    }
    std::string from = prefix;
    while (out.size() <= max) {
      MDB_val k = val(from);
      MDB_val v;
      int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
      if (rc == MDB_NOTFOUND) {
        return 0;
      }
      if (rc != 0) {
        return rc;
      }
      std::string_view key = view(k);
      if (key.substr(0, prefix.size()) != prefix) {
        return 0;
      }
      auto nul = key.find('\0');
      if (nul == std::string_view::npos) {
        return 0;
      }
      out.emplace_back(key.substr(0, nul));
      from = out.back() + std::string(1, '\1'); // past every entry of this word
    }
    return 0;
  }

  static constexpr std::string_view k_counts_built{"\0built", 6};

  lmdb::Env m_env;
  MDB_dbi m_credentials = 0;
  MDB_dbi m_counts = 0;
  bool m_have_counts = false;
  MDB_dbi m_messages = 0, m_deliveries = 0, m_events = 0, m_tokens = 0, m_blobs = 0,
          m_consultations = 0, m_msgids = 0, m_idem = 0, m_idx_sent = 0, m_idx_status = 0,
          m_idx_type = 0, m_idx_consult = 0, m_idx_word = 0, m_replies = 0;
};

// An ordered stream of index rows: tails inv(t) + id, ascending (newest first).
class Stream
{
public:
  virtual ~Stream() = default;
  virtual bool valid() const = 0;
  virtual std::string_view tail() const = 0;
  virtual void next() = 0;
  // Moves to the first row whose tail is >= `target`.
  virtual void seek(std::string_view target) = 0;
  virtual int rc() const { return 0; }
};

// Ordered scans of one index under one or more prefixes (keys: prefix, inv(t), id), merged
// newest first without collecting them: a listing reads only the keys it counts and the
// records of the page it shows. `since`/`until` bound the scan by key.
class MergedScan final : public Stream
{
public:
  MergedScan(MDB_txn* txn, MDB_dbi dbi, std::vector<std::string> prefixes,
             std::optional<util::Micros> since, std::optional<util::Micros> until)
      : m_since(since)
  {
    for (auto& p : prefixes) {
      auto src = std::make_unique<Source>();
      src->cursor = std::make_unique<lmdb::Cursor>(txn, dbi);
      src->prefix = std::move(p);
      if (src->cursor->rc() != 0) {
        m_rc = src->cursor->rc();
        return;
      }
      // until is exclusive: the first key is prefix + inv(until - 1).
      position(*src, until ? inv_time(*until - 1) : std::string());
      m_sources.push_back(std::move(src));
    }
    pick();
  }

  bool valid() const override { return m_best != nullptr; }
  std::string_view tail() const override { return m_best->tail; }
  int rc() const override { return m_rc; }

  void next() override
  {
    const std::string_view current = m_best->tail;
    for (auto& s : m_sources) {
      if (s->live && s->tail == current && s.get() != m_best) {
        advance(*s);
      }
    }
    advance(*m_best);
    pick();
  }

  void seek(std::string_view target) override
  {
    const std::string t(target);
    for (auto& s : m_sources) {
      // A few steps first (dense intersections), then a B-tree search.
      for (int step = 0; step < 4 && s->live && s->tail < t; ++step) {
        advance(*s);
      }
      if (s->live && s->tail < t) {
        position(*s, t);
      }
    }
    pick();
  }

private:
  struct Source
  {
    std::unique_ptr<lmdb::Cursor> cursor;
    std::string prefix;
    std::string_view tail; // inv(t) + id of the current key
    bool live = false;
  };

  void position(Source& s, const std::string& tail)
  {
    std::string start = s.prefix + tail;
    MDB_val k = val(start);
    MDB_val v;
    int rc = start.empty() ? mdb_cursor_get(s.cursor->get(), &k, &v, MDB_FIRST)
                           : mdb_cursor_get(s.cursor->get(), &k, &v, MDB_SET_RANGE);
    settle(s, rc, k);
  }

  void advance(Source& s)
  {
    MDB_val k;
    MDB_val v;
    settle(s, mdb_cursor_get(s.cursor->get(), &k, &v, MDB_NEXT), k);
  }

  void pick()
  {
    m_best = nullptr;
    for (auto& s : m_sources) {
      if (s->live && (m_best == nullptr || s->tail < m_best->tail)) {
        m_best = s.get();
      }
    }
  }

  void settle(Source& s, int rc, const MDB_val& k)
  {
    s.live = false;
    if (rc != 0) {
      if (rc != MDB_NOTFOUND) {
        m_rc = rc;
      }
      return;
    }
    std::string_view key = view(k);
    if (key.substr(0, s.prefix.size()) != s.prefix || key.size() <= s.prefix.size() + 8) {
      return;
    }
    s.tail = key.substr(s.prefix.size());
    if (m_since && from_inv_time(s.tail.substr(0, 8)) < *m_since) {
      return; // older than the range: this source is done
    }
    s.live = true;
  }

  std::optional<util::Micros> m_since;
  std::vector<std::unique_ptr<Source>> m_sources;
  Source* m_best = nullptr;
  int m_rc = 0;
};

// Word index entries under a word prefix (word, 0, inv(t), id): several words may start
// with the prefix, so these are collected, ordered and made unique.
class WordStream final : public Stream
{
public:
  WordStream(MDB_txn* txn, MDB_dbi dbi, const std::string& prefix,
             std::optional<util::Micros> since, std::optional<util::Micros> until)
  {
    lmdb::Cursor cur(txn, dbi);
    if (cur.rc() != 0) {
      m_rc = cur.rc();
      return;
    }
    MDB_val k = val(prefix);
    MDB_val v;
    int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      std::string_view key = view(k);
      if (key.substr(0, prefix.size()) != prefix) {
        break;
      }
      std::string_view rest = key.substr(prefix.size());
      auto nul = rest.find('\0');
      if (nul == std::string_view::npos || rest.size() - nul - 1 <= 8) {
        continue;
      }
      rest = rest.substr(nul + 1);
      util::Micros t = from_inv_time(rest.substr(0, 8));
      if ((since && t < *since) || (until && t >= *until)) {
        continue;
      }
      m_tails.emplace_back(rest);
    }
    m_rc = rc == MDB_NOTFOUND ? 0 : rc;
    std::sort(m_tails.begin(), m_tails.end());
    m_tails.erase(std::unique(m_tails.begin(), m_tails.end()), m_tails.end());
  }

  bool valid() const override { return m_pos < m_tails.size(); }
  std::string_view tail() const override { return m_tails[m_pos]; }
  void next() override { ++m_pos; }
  void seek(std::string_view target) override
  {
    m_pos = static_cast<std::size_t>(
        std::lower_bound(m_tails.begin() + static_cast<std::ptrdiff_t>(m_pos), m_tails.end(),
                         target, [](const std::string& a, std::string_view b) { return a < b; }) -
        m_tails.begin());
  }
  int rc() const override { return m_rc; }

private:
  std::vector<std::string> m_tails;
  std::size_t m_pos = 0;
  int m_rc = 0;
};

// The rows present in every stream (leapfrog join): each stream seeks to the largest
// current tail until all agree.
class Intersection final : public Stream
{
public:
  explicit Intersection(std::vector<std::unique_ptr<Stream>> streams)
      : m_streams(std::move(streams))
  {
    align();
  }
  bool valid() const override { return m_valid; }
  std::string_view tail() const override { return m_streams.front()->tail(); }
  void next() override
  {
    m_streams.front()->next();
    align();
  }
  void seek(std::string_view target) override
  {
    m_streams.front()->seek(target);
    align();
  }
  int rc() const override
  {
    for (const auto& s : m_streams) {
      if (s->rc() != 0) {
        return s->rc();
      }
    }
    return 0;
  }

private:
  void align()
  {
    m_valid = false;
    for (;;) {
      std::string_view high;
      for (const auto& s : m_streams) {
        if (!s->valid() || s->rc() != 0) {
          return;
        }
        if (s->tail() > high) {
          high = s->tail();
        }
      }
      const std::string target(high);
      bool agreed = true;
      for (auto& s : m_streams) {
        if (s->tail() != target) {
          s->seek(target);
          agreed = false;
        }
      }
      if (agreed) {
        m_valid = true;
        return;
      }
    }
  }

  std::vector<std::unique_ptr<Stream>> m_streams;
  bool m_valid = false;
};

// Runs a query: `fn(sent_at, delivery id, records)` for every matching row, newest first,
// until it returns false. The indexes answer status, type, consultation, keywords and the
// date range together (their ordered streams are intersected); only recipient and sender
// need the records. When no record is needed, none is read (`records` is null) and the
// caller reads the rows it keeps.
util::Status LmdbStore::walk(lmdb::Txn& txn, const Query& q, bool need_records, const RowFn& fn)
{
  std::vector<std::unique_ptr<Stream>> streams;
  if (!q.consultation.empty()) {
    streams.push_back(std::make_unique<MergedScan>(
        txn.get(), m_idx_consult, std::vector<std::string>{q.consultation + std::string(1, '\0')},
        q.since, q.until));
  }
  if (!q.statuses.empty()) {
    std::set<model::Status> unique(q.statuses.begin(), q.statuses.end());
    std::vector<std::string> prefixes;
    for (auto s : unique) {
      prefixes.emplace_back(1, static_cast<char>(s));
    }
    streams.push_back(
        std::make_unique<MergedScan>(txn.get(), m_idx_status, prefixes, q.since, q.until));
  }
  if (q.type) {
    streams.push_back(std::make_unique<MergedScan>(
        txn.get(), m_idx_type, std::vector<std::string>{std::string(1, static_cast<char>(*q.type))},
        q.since, q.until));
  }
  for (const auto& w : index_words(q.keywords)) {
    // The words starting with `w`: few, so their (ordered) entries are merged as they are
    // read; many (a short prefix), so they are collected and sorted.
    std::vector<std::string> words;
    if (int rc = words_with_prefix(txn.get(), w, 64, words); rc != 0) {
      return lmdb_error(rc, "word index");
    }
    if (words.size() <= 64) {
      for (auto& word : words) {
        word.push_back('\0');
      }
      streams.push_back(
          std::make_unique<MergedScan>(txn.get(), m_idx_word, std::move(words), q.since, q.until));
    } else {
      streams.push_back(std::make_unique<WordStream>(txn.get(), m_idx_word, w, q.since, q.until));
    }
  }
  if (streams.empty()) {
    streams.push_back(std::make_unique<MergedScan>(
        txn.get(), m_idx_sent, std::vector<std::string>{std::string()}, q.since, q.until));
  }
  std::unique_ptr<Stream> rows = streams.size() == 1
                                     ? std::move(streams.front())
                                     : std::make_unique<Intersection>(std::move(streams));

  const bool read_records =
      need_records || !q.recipient.empty() || !q.sender.empty() || !q.senders.empty();
  const std::string rcpt = util::ascii_lower(q.recipient);
  const std::string sender = util::ascii_lower(q.sender);
  std::set<std::string> senders;
  for (const auto& s : q.senders) {
    senders.insert(util::ascii_lower(s));
  }
  std::unordered_map<std::string, pb::Message> messages;

  auto row = [&](util::Micros sent_at, std::string_view id) -> bool {
    if (!read_records) {
      return fn(sent_at, id, nullptr, nullptr);
    }
    auto d = get_in<pb::Delivery>(txn, m_deliveries, std::string(id), "delivery");
    if (!d) {
      return true; // an index entry without its record: skipped, never fatal for a listing
    }
    if (!rcpt.empty() && util::ascii_lower(d->recipient()).find(rcpt) == std::string::npos) {
      return true;
    }
    auto mit = messages.find(d->message());
    if (mit == messages.end()) {
      if (messages.size() > 4096) {
        messages.clear();
      }
      auto m = get_in<pb::Message>(txn, m_messages, d->message(), "message");
      if (!m) {
        return true;
      }
      mit = messages.emplace(d->message(), std::move(m.value())).first;
    }
    const pb::Message& m = mit->second;
    if (!sender.empty() && util::ascii_lower(m.sender()).find(sender) == std::string::npos &&
        util::ascii_lower(m.from_header()).find(sender) == std::string::npos) {
      return true;
    }
    if (!senders.empty() && senders.count(util::ascii_lower(m.sender())) == 0) {
      return true;
    }
    return fn(sent_at, id, &d.value(), &m);
  };

  for (; rows->rc() == 0 && rows->valid(); rows->next()) {
    std::string_view tail = rows->tail();
    if (!row(from_inv_time(tail.substr(0, 8)), tail.substr(8))) {
      break;
    }
  }
  if (rows->rc() != 0) {
    return lmdb_error(rows->rc(), "index scan");
  }
  return util::ok_status();
}

Result<ListResult> LmdbStore::list(const Query& q)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  ListResult result;
  const std::size_t per_page = std::max<std::size_t>(1, q.per_page);
  const std::size_t first = (std::max<std::size_t>(1, q.page) - 1) * per_page;
  // One index filter at most (statuses count as one), no keywords, recipient or sender: the
  // total comes from the per-day counts and the scan stops once the page is full.
  const int index_filters =
      (q.statuses.empty() ? 0 : 1) + (q.type ? 1 : 0) + (q.consultation.empty() ? 0 : 1);
  const bool unfiltered = m_have_counts && index_filters <= 1 && q.recipient.empty() &&
                          q.sender.empty() && q.senders.empty() && index_words(q.keywords).empty();
  std::size_t known_total = 0;
  if (unfiltered) {
    std::vector<std::pair<char, std::string>> prefixes;
    MDB_dbi index = m_idx_sent;
    if (!q.statuses.empty()) {
      index = m_idx_status;
      for (auto st : std::set<model::Status>(q.statuses.begin(), q.statuses.end())) {
        prefixes.emplace_back('S', std::string(1, static_cast<char>(st)));
      }
    } else if (q.type) {
      index = m_idx_type;
      prefixes.emplace_back('T', std::string(1, static_cast<char>(*q.type)));
    } else if (!q.consultation.empty()) {
      index = m_idx_consult;
      prefixes.emplace_back('C', q.consultation + std::string(1, '\0'));
    } else {
      prefixes.emplace_back('s', std::string());
    }
    for (const auto& [letter, prefix] : prefixes) {
      auto n = count_range(txn, letter, index, prefix, q.since, q.until);
      if (!n) {
        return n.error();
      }
      known_total += n.value();
    }
  }
  std::vector<std::string> page_ids;
  std::size_t n = 0;
  auto st =
      walk(txn, q, false,
           [&](util::Micros, std::string_view id, const pb::Delivery* d, const pb::Message* m) {
             if (n >= first && result.items.size() + page_ids.size() < per_page) {
               if (d != nullptr) {
                 result.items.push_back(ListItem{*d, *m});
               } else {
                 page_ids.emplace_back(id);
               }
             }
             ++n;
             // Counted from the per-day counts: stop once the page is full.
             return !(unfiltered && n >= first + per_page);
           });
  if (!st) {
    return st.error();
  }
  result.total = unfiltered ? known_total : n;
  for (const auto& id : page_ids) {
    auto d = get_in<pb::Delivery>(txn, m_deliveries, id, "delivery");
    if (!d) {
      continue;
    }
    auto m = get_in<pb::Message>(txn, m_messages, d->message(), "message");
    if (!m) {
      continue;
    }
    result.items.push_back(ListItem{std::move(d.value()), std::move(m.value())});
  }
  return result;
}

Result<std::size_t> LmdbStore::count_range(lmdb::Txn& txn, char letter, MDB_dbi index,
                                           const std::string& prefix,
                                           std::optional<util::Micros> since,
                                           std::optional<util::Micros> until)
{
  constexpr util::Micros k_day_us = 86400LL * 1000000LL;
  auto scan = [&](std::optional<util::Micros> a,
                  std::optional<util::Micros> b) -> Result<std::size_t> {
    MergedScan s(txn.get(), index, std::vector<std::string>{prefix}, a, b);
    std::size_t n = 0;
    for (; s.rc() == 0 && s.valid(); s.next()) {
      ++n;
    }
    if (s.rc() != 0) {
      return lmdb_error(s.rc(), "index scan");
    }
    return n;
  };
  // Whole days [first_day, end_day): from the counts; the partial days: from the index.
  std::optional<util::Micros> first_day;
  std::optional<util::Micros> end_day;
  if (since) {
    first_day = day_number(*since + k_day_us - 1);
  }
  if (until) {
    end_day = day_number(*until);
  }
  if (first_day && end_day && *first_day >= *end_day) {
    return scan(since, until);
  }
  std::size_t n = 0;
  if (since && *since < *first_day * k_day_us) {
    auto head = scan(since, *first_day * k_day_us);
    if (!head) {
      return head.error();
    }
    n += head.value();
  }
  if (until && *end_day * k_day_us < *until) {
    auto tail = scan(*end_day * k_day_us, until);
    if (!tail) {
      return tail.error();
    }
    n += tail.value();
  }
  const std::string key_prefix = std::string(1, letter) + prefix;
  const std::string start = key_prefix + (first_day ? day_bytes(*first_day) : std::string());
  const std::string stop = end_day ? key_prefix + day_bytes(*end_day) : std::string();
  lmdb::Cursor cur(txn.get(), m_counts);
  if (cur.rc() != 0) {
    return lmdb_error(cur.rc(), "list counts");
  }
  MDB_val k = val(start);
  MDB_val v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
  for (; rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
    std::string_view key = view(k);
    if (key.size() != key_prefix.size() + 8 || key.substr(0, key_prefix.size()) != key_prefix) {
      if (key.substr(0, key_prefix.size()) != key_prefix) {
        break;
      }
      continue; // a longer consultation reference sharing the prefix cannot happen ('\0')
    }
    if (!stop.empty() && key >= stop) {
      break;
    }
    std::int64_t c = 0;
    if (v.mv_size == 8) {
      std::memcpy(&c, v.mv_data, 8);
    }
    n += static_cast<std::size_t>(std::max<std::int64_t>(c, 0));
  }
  if (rc != 0 && rc != MDB_NOTFOUND) {
    return lmdb_error(rc, "list counts");
  }
  return n;
}

Result<std::size_t> LmdbStore::for_each(const Query& q,
                                        const std::function<bool(const ListItem&)>& fn)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  std::size_t n = 0;
  auto st = walk(txn, q, true,
                 [&](util::Micros, std::string_view, const pb::Delivery* d, const pb::Message* m) {
                   ++n;
                   return fn(ListItem{*d, *m});
                 });
  if (!st) {
    return st.error();
  }
  return n;
}

Result<PurgeResult> LmdbStore::purge(util::Micros before, PurgeMode mode)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), mode == PurgeMode::apply ? 0 : MDB_RDONLY); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  PurgeResult result;
  // The deliveries sent before `before`, through the send-time index (oldest are last).
  Query q;
  q.until = before;
  std::vector<std::string> message_ids;
  std::set<std::string> seen;
  auto st = walk(txn, q, false,
                 [&](util::Micros, std::string_view id, const pb::Delivery*, const pb::Message*) {
                   auto d = get_in<pb::Delivery>(txn, m_deliveries, std::string(id), "delivery");
                   if (d && seen.insert(d->message()).second) {
                     message_ids.push_back(d->message());
                   }
                   return true;
                 });
  if (!st) {
    return st.error();
  }
  std::reverse(message_ids.begin(), message_ids.end());
  std::set<std::string> deliveries, candidate_blobs, replies;
  auto del = [&](MDB_dbi dbi, const std::string& key) -> int {
    if (mode != PurgeMode::apply || key.empty() || key.size() > 511) {
      return 0;
    }
    MDB_val k = val(key);
    int rc = mdb_del(txn.get(), dbi, &k, nullptr);
    return rc == MDB_NOTFOUND ? 0 : rc;
  };
  int rc = 0;
  for (const auto& mid : message_ids) {
    auto m = get_in<pb::Message>(txn, m_messages, mid, "message");
    if (!m) {
      continue;
    }
    result.messages.push_back(mid);
    candidate_blobs.insert(m->original_sha256());
    for (const auto& a : m->attachments()) {
      candidate_blobs.insert(a.sha256());
    }
    const std::string inv = inv_time(m->sent_at());
    const auto words = index_words(m->subject() + "\n" + m->text_body());
    for (const auto& did : m->delivery_ids()) {
      auto d = get_in<pb::Delivery>(txn, m_deliveries, did, "delivery");
      if (!d) {
        continue;
      }
      deliveries.insert(did);
      ++result.deliveries;
      for (const auto& rid : d->reply_ids()) {
        auto r = get_in<pb::Reply>(txn, m_replies, rid, "reply");
        if (r) {
          for (const auto& a : r->attachments()) {
            candidate_blobs.insert(a.sha256());
          }
        }
        replies.insert(rid);
        ++result.replies;
        rc = rc != 0 ? rc : del(m_replies, rid);
      }
      const std::string tail = inv + did;
      if (mode == PurgeMode::apply && rc == 0) {
        rc = count_delivery(txn.get(), m.value(), static_cast<model::Status>(d->status()), -1);
      }
      rc = rc != 0 ? rc : del(m_deliveries, did);
      rc = rc != 0 ? rc : del(m_idx_sent, tail);
      rc = rc != 0 ? rc : del(m_idx_status, std::string(1, static_cast<char>(d->status())) + tail);
      rc = rc != 0 ? rc : del(m_idx_type, std::string(1, static_cast<char>(m->type())) + tail);
      if (!m->consultation().empty()) {
        rc = rc != 0 ? rc : del(m_idx_consult, m->consultation() + std::string(1, '\0') + tail);
      }
      for (const auto& w : words) {
        rc = rc != 0 ? rc : del(m_idx_word, w + std::string(1, '\0') + tail);
      }
    }
    rc = rc != 0 ? rc : del(m_messages, mid);
    if (!m->message_id().empty()) {
      // Only when the Message-ID still names this message.
      MDB_val k = val(m->message_id());
      MDB_val v;
      if (m->message_id().size() <= 511 && mdb_get(txn.get(), m_msgids, &k, &v) == 0 &&
          view(v) == mid) {
        rc = rc != 0 ? rc : del(m_msgids, m->message_id());
      }
    }
    for (std::uint32_t seq = 1; seq <= m->event_count(); ++seq) {
      ++result.events;
      rc = rc != 0 ? rc : del(m_events, seq_key(mid, seq));
    }
    if (rc != 0) {
      return lmdb_error(rc, "purge");
    }
  }
  if (result.messages.empty()) {
    return result;
  }
  // Tokens and idempotency entries (and event dedupe keys) that name a purged delivery.
  auto sweep = [&](MDB_dbi dbi, bool tokens, std::size_t* count) -> int {
    lmdb::Cursor cur(txn.get(), dbi);
    if (cur.rc() != 0) {
      return cur.rc();
    }
    MDB_val k;
    MDB_val v;
    int r = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
    for (; r == 0; r = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      std::string owner;
      if (tokens) {
        pb::Token t;
        if (!t.ParseFromArray(v.mv_data, static_cast<int>(v.mv_size))) {
          continue;
        }
        owner = t.delivery();
      } else {
        owner = std::string(view(v));
      }
      if (deliveries.count(owner) == 0) {
        continue;
      }
      if (count != nullptr) {
        ++*count;
      }
      if (mode == PurgeMode::apply) {
        if (int d = mdb_cursor_del(cur.get(), 0); d != 0) {
          return d;
        }
      }
    }
    return r == MDB_NOTFOUND ? 0 : r;
  };
  if (int r = sweep(m_tokens, true, &result.tokens); r != 0) {
    return lmdb_error(r, "purge tokens");
  }
  if (int r = sweep(m_idem, false, nullptr); r != 0) {
    return lmdb_error(r, "purge idempotency keys");
  }
  // Blobs: kept when a remaining message or reply still refers to them.
  std::set<std::string> still_used;
  {
    std::set<std::string> purged(result.messages.begin(), result.messages.end());
    lmdb::Cursor cur(txn.get(), m_messages);
    MDB_val k;
    MDB_val v;
    int r = cur.rc() != 0 ? cur.rc() : mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
    for (; r == 0; r = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      if (purged.count(std::string(view(k))) != 0) {
        continue; // dry run: still there
      }
      pb::Message m;
      if (!m.ParseFromArray(v.mv_data, static_cast<int>(v.mv_size))) {
        continue;
      }
      if (candidate_blobs.count(m.original_sha256()) != 0) {
        still_used.insert(m.original_sha256());
      }
      for (const auto& a : m.attachments()) {
        if (candidate_blobs.count(a.sha256()) != 0) {
          still_used.insert(a.sha256());
        }
      }
    }
    if (r != 0 && r != MDB_NOTFOUND) {
      return lmdb_error(r, "purge blobs");
    }
    lmdb::Cursor rcur(txn.get(), m_replies);
    r = rcur.rc() != 0 ? rcur.rc() : mdb_cursor_get(rcur.get(), &k, &v, MDB_FIRST);
    for (; r == 0; r = mdb_cursor_get(rcur.get(), &k, &v, MDB_NEXT)) {
      if (replies.count(std::string(view(k))) != 0) {
        continue;
      }
      pb::Reply rep;
      if (!rep.ParseFromArray(v.mv_data, static_cast<int>(v.mv_size))) {
        continue;
      }
      for (const auto& a : rep.attachments()) {
        if (candidate_blobs.count(a.sha256()) != 0) {
          still_used.insert(a.sha256());
        }
      }
    }
    if (r != 0 && r != MDB_NOTFOUND) {
      return lmdb_error(r, "purge blobs");
    }
  }
  for (const auto& sha : candidate_blobs) {
    if (sha.empty()) {
      continue;
    }
    if (still_used.count(sha) != 0) {
      ++result.blobs_kept;
      continue;
    }
    ++result.blobs_deleted;
    if (int r = del(m_blobs, sha); r != 0) {
      return lmdb_error(r, "purge blobs");
    }
  }
  if (mode == PurgeMode::apply) {
    if (int r = txn.commit(); r != 0) {
      return lmdb_error(r, "commit");
    }
  }
  return result;
}

} // namespace

Result<std::unique_ptr<Store>> open_lmdb(const OpenOptions& options)
{
  util::crypto_init();
  if (!options.read_only) {
    if (::mkdir(options.path.c_str(), 0750) != 0 && errno != EEXIST) {
      return util::Error{static_cast<int>(Errc::io),
                         fmt::format("cannot create the store directory {}: {}", options.path,
                                     std::strerror(errno))};
    }
  }
  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) {
    return lmdb_error(rc, "mdb_env_create");
  }
  lmdb::Env env(raw);
  mdb_env_set_maxdbs(raw, 32);
  mdb_env_set_maxreaders(raw, 512);
  mdb_env_set_mapsize(raw, static_cast<std::size_t>(options.map_size_mb) * 1024 * 1024);
  unsigned int flags =
      MDB_NOTLS | (options.read_only ? MDB_RDONLY : 0) | (options.no_sync ? MDB_NOSYNC : 0);
  if (int rc = mdb_env_open(raw, options.path.c_str(), flags, 0660); rc != 0) {
    return util::Error{static_cast<int>(Errc::io), fmt::format("cannot open the store at {}: {}",
                                                               options.path, mdb_strerror(rc))};
  }
  int dead = 0;
  mdb_reader_check(raw, &dead);
  auto store = std::make_unique<LmdbStore>(std::move(env));
  if (auto st = store->open_dbs(options.read_only); !st) {
    return st.error();
  }
  return std::unique_ptr<Store>(std::move(store));
}

} // namespace pli::store
