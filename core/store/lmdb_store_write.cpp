// LmdbStore: the writes (messages, events with their chain, tokens, replies,
// consultations), the per-day counts kept with the indexes, and retention (purge).
#include "core/store/evidence.hpp"
#include "core/store/lmdb_store_impl.hpp"
#include "core/store/wire.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include <google/protobuf/io/coded_stream.h>

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <type_traits>
#include <unordered_map>

namespace pli::store::detail {

Result<util::Unit> LmdbStore::create_message(NewMessage m)
{
  // Everything that needs no transaction is done before joining the group commit: the
  // leader applies every caller's writes while the others wait for the shared fsync.
  const pb::Message& msg = m.message; // its version is set in the stored record only
  // Never a record that would not read back (a scan of its texts: no copy, no allocation).
  if (auto st = check_text(msg, "message " + msg.id()); !st) {
    return st.error();
  }
  const std::vector<std::string> words = index_words(msg.subject() + "\n" + msg.text_body());
  std::vector<std::pair<pb::Delivery, std::string>> deliveries;
  deliveries.reserve(m.deliveries.size());
  for (pb::Delivery d : m.deliveries) {
    if (auto st = prepare_delivery(d, msg.id()); !st) {
      return st.error();
    }
    std::string bytes = d.SerializeAsString();
    deliveries.emplace_back(std::move(d), std::move(bytes));
  }
  // The record (it holds the bodies) is serialized by the group's leader, and freed once
  // written: the callers waiting for the shared commit do not each hold a copy.
  const WriteFn apply = [&](lmdb::Txn& txn) -> util::Status {
    std::string record;
    if (msg.version() == k_schema_version) {
      record = msg.SerializeAsString();
    } else {
      pb::Message copy = msg;
      copy.set_version(k_schema_version);
      record = copy.SerializeAsString();
    }
    auto st = write_message(txn, msg, record, deliveries, m.blobs, words);
    // Copied into the transaction's pages (or failed): the caller, waiting for the commit,
    // need not hold the bodies and blobs meanwhile.
    m.blobs.clear();
    m.message.clear_text_body();
    m.message.clear_html_body();
    return st;
  };
  return group_write(apply);
}

util::Status
LmdbStore::write_message(lmdb::Txn& txn, const pb::Message& msg, const std::string& record,
                         const std::vector<std::pair<pb::Delivery, std::string>>& deliveries,
                         const std::map<std::string, std::string>& blobs,
                         const std::vector<std::string>& words)
{
  if (auto rc = put_new(txn, m_messages, msg.id(), record); rc != 0) {
    return rc == MDB_KEYEXIST ? conflict("message " + msg.id()) : lmdb_error(rc, "message");
  }
  for (const auto& [sha, bytes] : blobs) {
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
  for (const auto& [d, bytes] : deliveries) {
    if (int rc = put_new(txn, m_deliveries, d.id(), bytes); rc != 0) {
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
    rc = rc != 0 ? rc
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
    rc = rc != 0 ? rc : index_addresses(txn.get(), msg, d, tail, 1);
    rc = rc != 0
             ? rc
             : count_delivery(txn.get(), msg, d, static_cast<model::Status>(d.status()), 1, words);
    if (rc != 0) {
      return lmdb_error(rc, "indexes");
    }
  }
  return util::ok_status();
}

util::Status LmdbStore::room_for(std::size_t bytes)
{
  if (m_reserve_percent == 0) {
    return util::ok_status();
  }
  MDB_envinfo info{};
  MDB_stat stat{};
  if (int rc = mdb_env_info(m_env.get(), &info); rc != 0) {
    return lmdb_error(rc, "env info");
  }
  if (int rc = mdb_env_stat(m_env.get(), &stat); rc != 0) {
    return lmdb_error(rc, "env stat");
  }
  // Pages in use: the high-water mark less the pages on LMDB's free list (reused first).
  // Each free-list record is an ID list whose first word is its length.
  std::size_t free_pages = 0;
  {
    lmdb::Txn txn;
    if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    MDB_cursor* cur = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), 0, &cur); rc != 0) {
      return lmdb_error(rc, "free list");
    }
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (v.mv_size >= sizeof(std::size_t)) {
        std::size_t n = 0;
        std::memcpy(&n, v.mv_data, sizeof n);
        free_pages += n;
      }
    }
    mdb_cursor_close(cur);
  }
  const std::size_t page = stat.ms_psize;
  const std::size_t high = (info.me_last_pgno + 1) * page;
  const std::size_t used = high > free_pages * page ? high - free_pages * page : 0;
  const std::size_t reserve = info.me_mapsize / 100 * m_reserve_percent;
  // A write takes about twice its bytes in new pages (copy-on-write of the branches, the
  // indexes), and never less than a few pages.
  const std::size_t need = 2 * bytes + 16 * page;
  if (used + need + reserve > info.me_mapsize) {
    return util::Error{Errc::full, fmt::format("the store keeps its last {} MB for registered mail",
                                               reserve / (1024 * 1024))};
  }
  return util::ok_status();
}

Result<std::vector<pb::Event>> LmdbStore::append_events(const std::vector<NewEvent>& events)
{
  if (auto st = room_for(events.size() * 4096); !st) {
    return st.error();
  }
  Result<std::vector<pb::Event>> stored = util::Error{Errc::io, "not run"};
  const WriteFn apply = [&](lmdb::Txn& txn) -> util::Status {
    stored = apply_events(txn, events);
    return stored ? util::ok_status() : util::Status(stored.error());
  };
  if (auto st = group_write(apply); !st) {
    return st.error();
  }
  return stored;
}

util::Status LmdbStore::group_write(const WriteFn& apply)
{
  WriteRequest request;
  request.apply = &apply;
  bool led = false;
  std::unique_lock lock(m_group_mu);
  m_group_queue.push_back(&request);
  if (m_group_leader && m_group_queue.size() >= m_last_batch) {
    m_linger_cv.notify_one(); // a leader may be waiting for this many
  }
  while (!request.done) {
    if (m_group_leader) {
      m_group_cv.wait(lock);
      continue;
    }
    // Leader: everything queued so far (this request included) in one transaction.
    m_group_leader = true;
    if (m_group_wait.count() > 0 && m_last_batch > 1 && m_group_queue.size() < m_last_batch) {
      // Writers came together last time: let as many join this group (bounded wait).
      m_linger_cv.wait_for(lock, m_group_wait,
                           [&] { return m_group_queue.size() >= m_last_batch; });
    }
    std::vector<WriteRequest*> batch;
    batch.swap(m_group_queue);
    m_last_batch = batch.size();
    lock.unlock();
    run_batch(batch);
    lock.lock();
    m_group_leader = false;
    ++m_commits;
    m_group_cv.notify_all();
    m_commit_cv.notify_all();
    led = true;
  }
  lock.unlock();
  // The callers have their answers already.
  if (led && m_pages) {
    m_pages->check();
  }
  return std::move(request.result);
}

void LmdbStore::run_batch(std::vector<WriteRequest*>& batch)
{
  auto fail_all = [&](const util::Error& e) {
    for (auto* r : batch) {
      r->result = e;
    }
  };
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
    fail_all(lmdb_error(rc, "begin"));
  } else if (batch.size() == 1) {
    // Alone: no nested transaction (it would only add its allocations).
    auto* r = batch.front();
    r->result = (*r->apply)(txn);
    if (r->result) {
      if (int rc = txn.commit(); rc != 0) {
        r->result = lmdb_error(rc, "commit");
      }
    }
  } else {
    bool any = false;
    for (auto* r : batch) {
      lmdb::Txn child;
      if (int rc = child.begin_nested(m_env.get(), txn.get()); rc != 0) {
        r->result = lmdb_error(rc, "begin");
        continue;
      }
      r->result = (*r->apply)(child);
      if (m_pages) {
        m_pages->check(); // a large group's reads map much of the file before its commit
      }
      if (r->result) {
        if (int rc = child.commit(); rc != 0) {
          r->result = lmdb_error(rc, "commit");
        } else {
          any = true;
        }
      }
    }
    if (any) {
      if (int rc = txn.commit(); rc != 0) {
        const auto e = lmdb_error(rc, "commit");
        for (auto* r : batch) {
          if (r->result) {
            r->result = e;
          }
        }
      }
    }
  }
  std::lock_guard lock(m_group_mu);
  for (auto* r : batch) {
    r->done = true;
  }
}

Result<std::vector<pb::Event>> LmdbStore::apply_events(lmdb::Txn& txn,
                                                       const std::vector<NewEvent>& events)
{
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
    auto message = read_message_head(txn, delivery->message());
    if (!message) {
      return message.error();
    }
    std::uint32_t last_seq = 0;
    std::string last_hash;
    if (int rc = chain_head(txn, delivery->message(), last_seq, last_hash); rc != 0) {
      return lmdb_error(rc, "event chain");
    }
    auto chained = chained_event(ne, delivery->message(), delivery->id(), last_seq, last_hash);
    if (!chained) {
      return chained.error(); // a nested transaction: only this caller's writes are undone
    }
    pb::Event& e = chained.value();
    if (int rc = put_new(txn, m_events, seq_key(e.message(), e.seq()), e.SerializeAsString());
        rc != 0) {
      return lmdb_error(rc, "event");
    }
    auto old_status = static_cast<model::Status>(delivery->status());
    auto new_status = model::apply_event(old_status, ne.kind);
    record_times(*delivery, ne.kind, ne.at);
    delivery->set_status(static_cast<std::uint32_t>(new_status));
    if (int rc = put(txn, m_deliveries, delivery->id(), delivery->SerializeAsString()); rc != 0) {
      return lmdb_error(rc, "delivery");
    }
    if (new_status != old_status) {
      if (int rc = move_status(txn, *delivery, *message, old_status, new_status); rc != 0) {
        return lmdb_error(rc, "status index");
      }
    }
    if (ne.job) {
      if (int rc = put_job(txn, *ne.job, ne.at); rc != 0) {
        return lmdb_error(rc, "job");
      }
    }
    stored.push_back(std::move(e));
  }
  return stored;
}

int LmdbStore::move_status(lmdb::Txn& txn, const pb::Delivery& delivery, const MessageHead& message,
                           model::Status old_status, model::Status new_status)
{
  std::string tail = inv_time(message.sent_at) + delivery.id();
  std::string old_key = std::string(1, static_cast<char>(old_status)) + tail;
  MDB_val k = val(old_key);
  int rc = mdb_del(txn.get(), m_idx_status, &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) {
    return rc;
  }
  if (rc = put(txn, m_idx_status, std::string(1, static_cast<char>(new_status)) + tail, "");
      rc != 0) {
    return rc;
  }
  const std::string t = day_of(message.sent_at);
  rc = bump(txn.get(), "S" + std::string(1, static_cast<char>(old_status)) + t, -1);
  rc = rc != 0 ? rc : bump(txn.get(), "S" + std::string(1, static_cast<char>(new_status)) + t, 1);
  const std::string type(1, static_cast<char>(message.type));
  rc = rc != 0
           ? rc
           : bump(txn.get(), "X" + std::string(1, static_cast<char>(old_status)) + type + t, -1);
  rc = rc != 0 ? rc
               : bump(txn.get(), "X" + std::string(1, static_cast<char>(new_status)) + type + t, 1);
  if (rc == 0) {
    const std::string rid = addr_id('r', util::ascii_lower(delivery.recipient()));
    const std::string pid = pair_id(message.sender, message.from_header);
    rc = count_addresses(txn.get(), rid, pid, t, old_status, -1);
    rc = rc != 0 ? rc : count_addresses(txn.get(), rid, pid, t, new_status, 1);
  }
  return rc;
}

util::Result<LmdbStore::MessageHead> LmdbStore::read_message_head(lmdb::Txn& txn,
                                                                  const std::string& id)
{
  if (id.empty() || id.size() > 511) {
    return not_found(fmt::format("no message '{}'", id));
  }
  MDB_val k = val(id);
  MDB_val v;
  if (int rc = mdb_get(txn.get(), m_messages, &k, &v); rc != 0) {
    return rc == MDB_NOTFOUND ? not_found(fmt::format("no message '{}'", id))
                              : lmdb_error(rc, "message");
  }
  // The wire format, field by field: length-delimited fields (the bodies) are skipped by
  // their length, without reading their bytes (wire.hpp).
  google::protobuf::io::CodedInputStream in(static_cast<const std::uint8_t*>(v.mv_data),
                                            static_cast<int>(v.mv_size));
  MessageHead head;
  std::uint32_t version = 0;
  const auto invalid = util::Error{Errc::invalid, "message: undecodable record"};
  while (std::uint32_t tag = in.ReadTag()) {
    const int field = wire::field_number(tag);
    const auto type = wire::wire_type(tag);
    std::uint64_t n = 0;
    if (type == wire::WireType::varint &&
        (field == pb::Message::kVersionFieldNumber || field == pb::Message::kTypeFieldNumber ||
         field == pb::Message::kSentAtFieldNumber)) {
      if (!in.ReadVarint64(&n)) {
        return invalid;
      }
      if (field == pb::Message::kVersionFieldNumber) {
        version = static_cast<std::uint32_t>(n);
      } else if (field == pb::Message::kTypeFieldNumber) {
        head.type = static_cast<std::uint32_t>(n);
      } else {
        head.sent_at = static_cast<util::Micros>(n);
      }
    } else if (type == wire::WireType::length_delimited &&
               (field == pb::Message::kSenderFieldNumber ||
                field == pb::Message::kFromHeaderFieldNumber)) {
      std::uint32_t len = 0;
      std::string& out = field == pb::Message::kSenderFieldNumber ? head.sender : head.from_header;
      if (!in.ReadVarint32(&len) || !in.ReadString(&out, static_cast<int>(len))) {
        return invalid;
      }
    } else if (!wire::skip_field(in, tag)) {
      return invalid;
    }
  }
  if (!in.ConsumedEntireMessage() || in.CurrentPosition() != static_cast<int>(v.mv_size)) {
    return invalid;
  }
  if (version != k_schema_version) {
    return util::Error{
        Errc::invalid,
        fmt::format("message: schema version {} is not supported by this pli", version)};
  }
  return head;
}

int LmdbStore::chain_head(lmdb::Txn& txn, const std::string& message, std::uint32_t& seq,
                          std::string& hash)
{
  seq = 0;
  hash.clear();
  lmdb::Cursor cur(txn.get(), m_events);
  if (cur.rc() != 0) {
    return cur.rc();
  }
  // The last key before (message, 0, 0xffffffff) is the message's newest event, if any.
  const std::string after = seq_key(message, 0xffffffffU);
  MDB_val k = val(after);
  MDB_val v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
  rc = rc == 0              ? mdb_cursor_get(cur.get(), &k, &v, MDB_PREV)
       : rc == MDB_NOTFOUND ? mdb_cursor_get(cur.get(), &k, &v, MDB_LAST)
                            : rc;
  if (rc == MDB_NOTFOUND) {
    return 0;
  }
  if (rc != 0) {
    return rc;
  }
  const std::string_view key = view(k);
  if (key.size() != message.size() + 5 ||
      key.substr(0, message.size() + 1) != after.substr(0, message.size() + 1)) {
    return 0; // another message's event: this one has none
  }
  pb::Event e;
  if (!parse_lenient(view(v), e)) {
    return MDB_CORRUPTED;
  }
  seq = e.seq();
  hash = e.hash();
  return 0;
}

Result<util::Unit>
LmdbStore::put_token(const std::string& token_hash, util::Micros expires_at,
                     const std::function<util::Status(lmdb::Txn&, pb::Token&)>& fill)
{
  if (auto st = room_for(4096); !st) {
    return st.error();
  }
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  pb::Token t;
  t.set_version(k_schema_version);
  if (auto st = fill(txn, t); !st) {
    return st.error();
  }
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

Result<util::Unit> LmdbStore::add_token(const std::string& delivery, const std::string& token_hash,
                                        util::Micros expires_at)
{
  return put_token(token_hash, expires_at, [&](lmdb::Txn& txn, pb::Token& t) -> util::Status {
    auto d = get_in<pb::Delivery>(txn, m_deliveries, delivery, "delivery");
    if (!d) {
      return d.error();
    }
    t.set_purpose(1);
    t.set_delivery(delivery);
    return util::ok_status();
  });
}

Result<util::Unit> LmdbStore::add_reply_token(const std::string& reply,
                                              const std::string& token_hash,
                                              util::Micros expires_at)
{
  return put_token(token_hash, expires_at, [&](lmdb::Txn& txn, pb::Token& t) -> util::Status {
    auto rep = get_in<pb::Reply>(txn, m_replies, reply, "reply");
    if (!rep) {
      return rep.error();
    }
    t.set_purpose(2);
    t.set_delivery(rep->delivery());
    t.set_reply(rep->id());
    return util::ok_status();
  });
}

Result<util::Unit> LmdbStore::create_reply(const NewReply& r)
{
  std::size_t bytes = r.reply.ByteSizeLong() + r.events.size() * 4096;
  for (const auto& [sha, blob] : r.blobs) {
    bytes += blob.size();
  }
  if (auto st = room_for(bytes); !st) {
    return st.error();
  }
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  auto d = get_in<pb::Delivery>(txn, m_deliveries, r.reply.delivery(), "delivery");
  if (!d) {
    return d.error();
  }
  auto made = reply_record(r.reply, d->message());
  if (!made) {
    return made.error();
  }
  const pb::Reply& rec = made.value();
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
  if (!r.events.empty()) {
    if (auto ev = apply_events(txn, r.events); !ev) {
      return ev.error();
    }
  }
  if (int rc = txn.commit(); rc != 0) {
    return lmdb_error(rc, "commit");
  }
  return util::Unit{};
}

Result<util::Unit> LmdbStore::put_consultation(const pb::Consultation& c)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  pb::Consultation rec = c;
  rec.set_version(k_schema_version);
  if (auto st = check_text(rec, "consultation"); !st) {
    return st.error();
  }
  if (int rc = put(txn, m_consultations, rec.reference(), rec.SerializeAsString()); rc != 0) {
    return lmdb_error(rc, "consultation");
  }
  if (int rc = txn.commit(); rc != 0) {
    return lmdb_error(rc, "commit");
  }
  return util::Unit{};
}

int LmdbStore::bump(MDB_txn* txn, const std::string& key, std::int64_t delta)
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

int LmdbStore::count_delivery(MDB_txn* txn, const pb::Message& m, const pb::Delivery& d,
                              model::Status status, std::int64_t delta,
                              const std::vector<std::string>& words)
{
  const std::string t = day_of(m.sent_at());
  int rc = bump(txn, "s" + t, delta);
  rc = rc != 0 ? rc : bump(txn, "S" + std::string(1, static_cast<char>(status)) + t, delta);
  rc = rc != 0 ? rc : bump(txn, "T" + std::string(1, static_cast<char>(m.type())) + t, delta);
  if (rc == 0 && !m.consultation().empty()) {
    rc = bump(txn, "C" + m.consultation() + std::string(1, '\0') + t, delta);
  }
  rc = rc != 0 ? rc
               : bump(txn,
                      "X" + std::string(1, static_cast<char>(status)) +
                          std::string(1, static_cast<char>(m.type())) + t,
                      delta);
  // W word, 0, day: the word's deliveries; followed by W word, 0, day, type (the same
  // B-tree leaf, mostly: no page more to write).
  const std::string type(1, static_cast<char>(m.type()));
  for (const auto& w : words) {
    const std::string key = "W" + w + std::string(1, '\0') + t;
    rc = rc != 0 ? rc : bump(txn, key, delta);
    rc = rc != 0 ? rc : bump(txn, key + type, delta);
  }
  return rc != 0 ? rc
                 : count_addresses(txn, addr_id('r', util::ascii_lower(d.recipient())),
                                   pair_id(m.sender(), m.from_header()), t, status, delta);
}

int LmdbStore::count_addresses(MDB_txn* txn, const std::string& rid, const std::string& pid,
                               const std::string& day, model::Status status, std::int64_t delta)
{
  const std::string st(1, static_cast<char>(status));
  int rc = bump(txn, "A" + rid + day + st, delta);
  return rc != 0 ? rc : bump(txn, "A" + pid + day + st, delta);
}

std::string LmdbStore::pair_text(std::string_view sender, std::string_view from)
{
  return util::ascii_lower(sender) + "\n" + util::ascii_lower(from);
}

std::string LmdbStore::addr_id(char kind, std::string_view lower)
{
  return std::string(1, kind) + util::sha256(lower).substr(0, 16);
}

int LmdbStore::index_address(MDB_txn* txn, char kind, const std::string& text,
                             const std::string& tail, std::int64_t delta)
{
  if (m_addrs == 0 || text.empty()) {
    return 0;
  }
  const std::string lower = util::ascii_lower(text);
  const std::string id = addr_id(kind, lower);
  const std::string posting = id + tail;
  MDB_val pk = val(posting);
  if (delta > 0) {
    MDB_val pv = val("");
    int rc = mdb_put(txn, m_idx_addr, &pk, &pv, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
      return 0; // already indexed
    }
    if (rc != 0) {
      return rc;
    }
  } else {
    int rc = mdb_del(txn, m_idx_addr, &pk, nullptr);
    if (rc == MDB_NOTFOUND) {
      return 0;
    }
    if (rc != 0) {
      return rc;
    }
  }
  return count_address(txn, id, lower, delta);
}

int LmdbStore::count_address(MDB_txn* txn, const std::string& id, const std::string& lower,
                             std::int64_t delta)
{
  MDB_val k = val(id);
  MDB_val v;
  std::int64_t n = 0;
  int rc = mdb_get(txn, m_addrs, &k, &v);
  if (rc == 0 && v.mv_size >= 8) {
    std::memcpy(&n, v.mv_data, 8);
  } else if (rc != 0 && rc != MDB_NOTFOUND) {
    return rc;
  }
  n += delta;
  if (n <= 0) {
    rc = mdb_del(txn, m_addrs, &k, nullptr);
    return rc == MDB_NOTFOUND ? 0 : rc;
  }
  std::string value(8, '\0');
  std::memcpy(value.data(), &n, 8);
  value += lower;
  MDB_val nv = val(value);
  return mdb_put(txn, m_addrs, &k, &nv, 0);
}

int LmdbStore::index_addresses(MDB_txn* txn, const pb::Message& m, const pb::Delivery& d,
                               const std::string& tail, std::int64_t delta)
{
  int rc = index_address(txn, 'r', d.recipient(), tail, delta);
  rc = rc != 0 ? rc : index_address(txn, 's', m.sender(), tail, delta);
  rc = rc != 0 ? rc : index_address(txn, 'f', m.from_header(), tail, delta);
  if (rc != 0 || m_addrs == 0) {
    return rc;
  }
  const std::string pair = pair_text(m.sender(), m.from_header());
  return count_address(txn, addr_id('p', pair), pair, delta);
}

int LmdbStore::purge_events(lmdb::Txn& txn, const std::string& message, PurgeMode mode,
                            std::size_t& count)
{
  lmdb::Cursor cur(txn.get(), m_events);
  if (cur.rc() != 0) {
    return cur.rc();
  }
  const std::string prefix = message + std::string(1, '\0');
  MDB_val k = val(prefix);
  MDB_val v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
  for (; rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
    const std::string_view key = view(k);
    if (key.size() != prefix.size() + 4 || key.substr(0, prefix.size()) != prefix) {
      break;
    }
    ++count;
    if (mode == PurgeMode::apply) {
      if (int d = mdb_cursor_del(cur.get(), 0); d != 0) {
        return d;
      }
    }
  }
  return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
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
        rc = count_delivery(txn.get(), m.value(), d.value(),
                            static_cast<model::Status>(d->status()), -1, words);
        rc = rc != 0 ? rc : index_addresses(txn.get(), m.value(), d.value(), tail, -1);
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
    // Its events, by their keys (message id, 0, seq): whatever their records hold, one that
    // cannot be read does not stop the purge.
    rc = rc != 0 ? rc : purge_events(txn, mid, mode, result.events);
    if (rc != 0) {
      return lmdb_error(rc, "purge");
    }
  }
  if (result.messages.empty()) {
    return result;
  }
  // Tokens and idempotency entries (and event dedupe keys) that name a purged delivery.
  auto sweep = [&](MDB_dbi dbi, bool tokens, std::size_t* count) -> int {
    return lmdb::for_each_entry(txn.get(), dbi,
                                [&](MDB_cursor* cur, std::string_view, std::string_view value) {
                                  std::string owner;
                                  if (tokens) {
                                    pb::Token t;
                                    if (!parse_lenient(value, t)) {
                                      return 0;
                                    }
                                    owner = t.delivery();
                                  } else {
                                    owner = std::string(value);
                                  }
                                  if (deliveries.count(owner) == 0) {
                                    return 0;
                                  }
                                  if (count != nullptr) {
                                    ++*count;
                                  }
                                  return mode == PurgeMode::apply ? mdb_cursor_del(cur, 0) : 0;
                                });
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
    // The blobs of the records that stay (a dry run's purged ones are still there).
    const auto keep_used = [&](auto type, MDB_dbi dbi, const std::set<std::string>& gone) {
      using Record = decltype(type);
      return lmdb::for_each_entry(
          txn.get(), dbi, [&](MDB_cursor*, std::string_view key, std::string_view value) {
            Record record;
            if (gone.count(std::string(key)) != 0 || !parse_lenient(value, record)) {
              return 0;
            }
            if constexpr (std::is_same_v<Record, pb::Message>) {
              if (candidate_blobs.count(record.original_sha256()) != 0) {
                still_used.insert(record.original_sha256());
              }
            }
            for (const auto& a : record.attachments()) {
              if (candidate_blobs.count(a.sha256()) != 0) {
                still_used.insert(a.sha256());
              }
            }
            return 0;
          });
    };
    if (int r = keep_used(pb::Message(), m_messages, purged); r != 0) {
      return lmdb_error(r, "purge blobs");
    }
    if (int r = keep_used(pb::Reply(), m_replies, replies); r != 0) {
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

} // namespace pli::store::detail
