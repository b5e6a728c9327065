// LmdbStore: the embedded store, one LMDB environment shared by the milter, linkd and
// the CLI on one host. Opened with MDB_NOTLS so that transactions are not tied to the
// threads of libmilter's or libmicrohttpd's pools; each transaction lives inside one
// call. Writers are serialised by LMDB's lock; every commit is synced to disk; concurrent
// create_message and append_events calls of one process share a commit (group commit, see
// group_write).
//
// Databases (keys -> values):
//   messages       message id -> pb::Message
//   deliveries     delivery id -> pb::Delivery
//   events         message id, 0, seq (4 bytes BE) -> pb::Event (the last one of a message
//                  is the head of its hash chain)
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
//   counts         index letter, prefix, UTC day (8 bytes BE) -> number of index entries;
//                  and with one byte after the day: W word, 0, day, type (the word's
//                  deliveries of that type); A address id, day, status (the deliveries of a
//                  recipient, or of a sender pair, in that status)
//   idx_addr       address id, inv(sent_at), delivery id -> ""
//   jobs           job id (8 bytes BE) -> pb::Job (the outbox: mails to send after a commit)
//   addrs          address id -> count (8 bytes) + lower-case text; ids are kind + h16 of
//                  the text: r recipient, s envelope sender, f From header, p the pair
//                  "sender\nfrom" (no postings: the key of a delivery's sender counts)
//
// The implementation is split by concern: lmdb_store.cpp (environment, opening, records),
// lmdb_store_write.cpp (writes, events, counts, purge), lmdb_store_query.cpp (index
// streams, walk, list, totals). This header is private to core/store.
#pragma once

#include "core/store/credentials.hpp"
#include "core/store/lenient.hpp"
#include "core/store/lmdb.hpp"
#include "core/store/map_pages.hpp"
#include "core/store/records.hpp"
#include "core/store/store.hpp"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pli::store::detail {

using lmdb::val;
using lmdb::view;

inline util::Error lmdb_error(int rc, std::string_view what)
{
  Errc code = rc == MDB_MAP_FULL ? Errc::full : rc == MDB_NOTFOUND ? Errc::not_found : Errc::io;
  return util::Error{code, fmt::format("{}: {}", what, mdb_strerror(rc))};
}

inline std::string inv_time(util::Micros t)
{
  std::uint64_t v = static_cast<std::uint64_t>(INT64_MAX - t);
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

inline util::Micros from_inv_time(std::string_view s)
{
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<unsigned char>(s[static_cast<std::size_t>(i)]);
  }
  return INT64_MAX - static_cast<util::Micros>(v);
}

inline std::string seq_key(const std::string& message, std::uint32_t seq)
{
  std::string k = message;
  k.push_back('\0');
  for (int shift = 24; shift >= 0; shift -= 8) {
    k.push_back(static_cast<char>((seq >> shift) & 0xff));
  }
  return k;
}

class LmdbStore final : public Store
{
public:
  explicit LmdbStore(lmdb::Env env, bool write_mostly = false, std::uint32_t group_wait_us = 0,
                     std::uint32_t reserve_percent = 0)
      : m_group_wait(group_wait_us), m_env(std::move(env)), m_reserve_percent(reserve_percent)
  {
    if (write_mostly) {
      const auto map = find_map();
      m_pages = std::make_unique<MapPages>(map.first, map.second, MapPages::Limits{});
    }
  }

  util::Status open_dbs(bool read_only);
  // OpenOptions::reserve_percent: ok when `bytes` more (an estimate of a write) leave the
  // reserve free; else `full`. Errors: full, io.
  util::Status room_for(std::size_t bytes);

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
  // The events of a message read in `txn`, oldest first.
  Result<std::vector<pb::Event>> events_in(lmdb::Txn& txn, const std::string& message_id);
  Result<pb::Delivery> wait_for_sent(const std::string& id, std::chrono::milliseconds max) override;
  Result<util::Unit> create_reply(const NewReply& r) override;
  Result<pb::Reply> get_reply(const std::string& id) override;
  Result<util::Unit> put_consultation(const pb::Consultation& c) override;
  Result<ListResult> list(const Query& q) override;
  Result<std::size_t> for_each(const Query& q,
                               const std::function<bool(const ListItem&)>& fn) override;
  Result<PurgeResult> purge(util::Micros before, PurgeMode mode) override;
  Result<CheckResult> check(CheckMode mode) override; // check.cpp

  // The buyers' area (credentials.cpp).
  Result<util::Unit> put_credential(const std::string& key, const pb::Credential& c,
                                    util::Micros now) override
  {
    if (auto st = room_for(4096); !st) {
      return st.error();
    }
    return credentials::put(m_env.get(), m_credentials, key, c, now);
  }
  Result<pb::Credential> get_credential(const std::string& key) override
  {
    return credentials::get(m_env.get(), m_credentials, key);
  }
  Result<std::size_t>
  export_messages(const std::function<bool(const MessageBundle&)>& fn) override; // copy.cpp
  Result<std::size_t> export_loose(const std::function<bool(const LooseRecord&)>& fn) override;
  Result<Imported> import_message(const MessageBundle& b) override;
  Result<std::size_t> import_loose(const std::vector<LooseRecord>& batch) override;
  Result<std::uint64_t> count_failure(const std::string& key, util::Micros window_start,
                                      util::Micros window_end) override; // lmdb_store.cpp
  Result<pb::Credential> take_credential(const std::string& key) override
  {
    return credentials::take(m_env.get(), m_credentials, key);
  }

  // The outbox (lmdb_jobs.cpp).
  Result<std::uint64_t> enqueue(const Job& job, util::Micros now) override;
  Result<std::vector<ClaimedJob>> claim_jobs(const std::string& queue, util::Micros now,
                                             util::Micros lease, std::size_t max) override;
  Result<util::Unit> finish_job(std::uint64_t id) override;
  Result<util::Unit> retry_job(std::uint64_t id, util::Micros due_at) override;
  Result<std::vector<ClaimedJob>> list_jobs(const std::string& queue) override;
  // A new job record inside `txn` (after the last id); `id` gets its id. An LMDB code.
  int put_job(lmdb::Txn& txn, const Job& job, util::Micros now, std::uint64_t* id = nullptr);

private:
  static util::Error conflict(const std::string& what)
  {
    return util::Error{Errc::conflict, what + " already exists"};
  }

  // Stores a new link token under `token_hash` in one transaction (add_token,
  // add_reply_token): `fill(txn, token)` reads what the token names in that transaction
  // and sets its purpose and owner, or returns the error that aborts. Errors: full, io,
  // conflict (a token of that hash exists), and fill's.
  Result<util::Unit> put_token(const std::string& token_hash, util::Micros expires_at,
                               const std::function<util::Status(lmdb::Txn&, pb::Token&)>& fill);

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

  // The entry of `cache` for message `id`, made by `make(message record)` from the record
  // read in `txn` when absent (walks over deliveries read each message once; the cache is
  // emptied past 4,096 entries). nullptr when the message cannot be read.
  template <typename V, typename Make>
  V* cached_message(lmdb::Txn& txn, std::unordered_map<std::string, V>& cache,
                    const std::string& id, Make&& make)
  {
    auto it = cache.find(id);
    if (it == cache.end()) {
      if (cache.size() > 4096) {
        cache.clear();
      }
      auto m = get_in<pb::Message>(txn, m_messages, id, "message");
      if (!m) {
        return nullptr;
      }
      it = cache.emplace(id, make(std::move(m.value()))).first;
    }
    return &it->second;
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
  // `recipient_on_records`: the recipient filter is checked on the records instead of the
  // address index (a substring that matches very many addresses, when only a page is read).
  util::Status walk(lmdb::Txn& txn, const Query& q, bool need_records, const RowFn& fn,
                    bool recipient_on_records = false);

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
  int bump(MDB_txn* txn, const std::string& key, std::int64_t delta);

  // The counts of one delivery's index entries (sent, status, type, consultation,
  // status+type, words, words+type, recipient+status, sender pair+status).
  int count_delivery(MDB_txn* txn, const pb::Message& m, const pb::Delivery& d,
                     model::Status status, std::int64_t delta,
                     const std::vector<std::string>& words);
  // The A counts of a delivery (recipient id `rid`, sender pair id `pid`) in `status` on
  // `day` (day_of).
  int count_addresses(MDB_txn* txn, const std::string& rid, const std::string& pid,
                      const std::string& day, model::Status status, std::int64_t delta);
  // The text of a message's sender pair (lower-case envelope sender, newline, lower-case
  // From header) and its id.
  static std::string pair_text(std::string_view sender, std::string_view from);
  static std::string pair_id(std::string_view sender, std::string_view from)
  {
    return addr_id('p', pair_text(sender, from));
  }

  // Builds the counts and the address index from the records and the indexes (a store made
  // before they existed), once.
  int rebuild_indexes(lmdb::Txn& txn);

  // kind + the first 16 bytes of the SHA-256 of `lower` (an addrs key, a prefix of idx_addr).
  static std::string addr_id(char kind, std::string_view lower);
  // Adds (delta 1) or removes (delta -1) one address posting of a delivery (`tail`: inv(t)
  // + delivery id) with its distinct-address count. Returns an LMDB code.
  int index_address(MDB_txn* txn, char kind, const std::string& text, const std::string& tail,
                    std::int64_t delta);
  // The distinct-address entry `id` (text `lower`) counts `delta` more deliveries (removed at
  // 0). Returns an LMDB code.
  int count_address(MDB_txn* txn, const std::string& id, const std::string& lower,
                    std::int64_t delta);
  // Every address posting of a delivery (recipient, envelope sender, From header), and the
  // count of its message's sender pair.
  int index_addresses(MDB_txn* txn, const pb::Message& m, const pb::Delivery& d,
                      const std::string& tail, std::int64_t delta);
  // The ids (kind + h16) of the addresses of `kind` whose lower-case text contains `needle`.
  int addresses_containing(MDB_txn* txn, char kind, const std::string& needle,
                           std::vector<std::string>& out);

  // The rows of `q` (no recipient or sender filter) sent in [since, until), from the indexes.
  Result<std::size_t> count_rows(lmdb::Txn& txn, const Query& q, std::optional<util::Micros> since,
                                 std::optional<util::Micros> until);
  // The rows of `q`: `whole_days(first, end)` counts the whole UTC days [first, end) of its
  // date range (unbounded ends are nullopt); the partial days at the ends are counted from
  // the indexes.
  using DaysCounter =
      std::function<Result<std::size_t>(std::optional<util::Micros>, std::optional<util::Micros>)>;
  Result<std::size_t> count_range(lmdb::Txn& txn, const Query& q, const DaysCounter& whole_days);
  // A count key without its day: `prefix` + day (+ `suffix`: the type of a W count, the
  // status of an A count).
  struct CountKey
  {
    std::string prefix;
    std::string suffix;
    CountKey(std::string p, std::string s = {}) : prefix(std::move(p)), suffix(std::move(s)) {}
  };
  // The sum of the counts under `keys` over the days [first, end).
  Result<std::size_t> sum_counts(lmdb::Txn& txn, const std::vector<CountKey>& keys,
                                 std::optional<util::Micros> first,
                                 std::optional<util::Micros> end);
  // One filter of a combined query, as per-day counts: the count keys of its values (several
  // statuses, the words a keyword starts) and whether their sum is its exact count (statuses
  // exclude each other; one delivery may hold two of the words).
  struct CountedFilter
  {
    std::vector<CountKey> keys;
    bool exact = true;
  };
  // The rows matching every filter over the days [first, end), day by day: a day where one
  // filter matches nothing counts 0; a day where every filter but one (exact) matches every
  // delivery of the day counts that one's number; only the other days are counted from the
  // indexes. Exact, and cheap when a filter matches everything (a word in every message).
  Result<std::size_t> count_days(lmdb::Txn& txn, const Query& q,
                                 const std::vector<CountedFilter>& filters,
                                 std::optional<util::Micros> first,
                                 std::optional<util::Micros> end);
  // The per-day counts under one count key over [first, end): day -> count.
  int day_counts(MDB_txn* txn, const CountKey& key, std::optional<util::Micros> first,
                 std::optional<util::Micros> end, std::map<util::Micros, std::int64_t>& out);
  // The distinct indexed words starting with `prefix`, up to `max` + 1 of them (one B-tree
  // search per word). Returns an LMDB code.
  int words_with_prefix(MDB_txn* txn, const std::string& prefix, std::size_t max,
                        std::vector<std::string>& out);

  // A new message's records and indexes, inside `txn` (create_message's part of a group
  // commit). `record` and the deliveries' bytes are serialised by the caller beforehand.
  util::Status write_message(lmdb::Txn& txn, const pb::Message& msg, const std::string& record,
                             const std::vector<std::pair<pb::Delivery, std::string>>& deliveries,
                             const std::map<std::string, std::string>& blobs,
                             const std::vector<std::string>& words);

  // What an event needs of its message record (the send time, type and senders that key its
  // delivery's indexes and counts), read without touching the rest: the bodies of a 100 KB
  // message would otherwise be paged in (and the record rewritten) for every event.
  struct MessageHead
  {
    util::Micros sent_at = 0;
    std::uint32_t type = 0;
    std::string sender;
    std::string from_header;
  };
  util::Result<MessageHead> read_message_head(lmdb::Txn& txn, const std::string& id);
  // Moves a delivery's status index entry and its counts from `old_status` to `new_status`
  // (its record is written by the caller). An LMDB code.
  int move_status(lmdb::Txn& txn, const pb::Delivery& delivery, const MessageHead& message,
                  model::Status old_status, model::Status new_status);
  // The newest event of a message, the head of its hash chain (the events are keyed by
  // message and sequence number). `seq` 0 and `hash` "" when it has none. An LMDB code.
  int chain_head(lmdb::Txn& txn, const std::string& message, std::uint32_t& seq, std::string& hash);

  // Counts (and with PurgeMode::apply deletes) every event record of `message`, read or not.
  // An LMDB code.
  int purge_events(lmdb::Txn& txn, const std::string& message, PurgeMode mode, std::size_t& count);

  // The events of one append_events call, applied inside `txn` (a nested transaction of a
  // group commit). Returns the stored events.
  Result<std::vector<pb::Event>> apply_events(lmdb::Txn& txn, const std::vector<NewEvent>& events);

  // Group commit: concurrent writes of this process (create_message and append_events from
  // libmilter's and libmicrohttpd's threads) are applied in one write transaction, each in
  // its own nested transaction (one caller's error undoes only its own writes), and share
  // one commit and its fsync. Every caller gets its answer only after that commit.
  using WriteFn = std::function<util::Status(lmdb::Txn&)>;
  struct WriteRequest
  {
    const WriteFn* apply = nullptr;
    util::Status result = util::Error{Errc::io, "not run"};
    bool done = false;
  };
  // Runs `apply` in a nested transaction of the next group commit; returns once it is
  // durable (or failed).
  util::Status group_write(const WriteFn& apply);
  void run_batch(std::vector<WriteRequest*>& batch);
  // The address and length of the environment's memory map (LMDB does not tell it): the
  // mapping of its data file in /proc/self/maps. {nullptr, 0} when not found.
  std::pair<void*, std::size_t> find_map() const;
  std::mutex m_group_mu;
  std::condition_variable m_group_cv;
  std::vector<WriteRequest*> m_group_queue;
  bool m_group_leader = false;
  // OpenOptions::group_wait_us: the leader waits (m_linger_cv) for m_last_batch writers.
  std::chrono::microseconds m_group_wait;
  std::size_t m_last_batch = 0;
  std::condition_variable m_linger_cv;
  // Group commits done so far (under m_group_mu), and their signal: wait_for_sent's wake-up.
  std::uint64_t m_commits = 0;
  // count_failure's windows: (key, window start) -> (window end, count), in this process.
  std::mutex m_failures_mu;
  std::map<std::pair<std::string, util::Micros>, std::pair<util::Micros, std::uint64_t>> m_failures;
  std::condition_variable m_commit_cv;

  static constexpr std::string_view k_counts_built{"\0built", 6};
  // Counts X and W and the address index (added later than the first counts).
  static constexpr std::string_view k_counts_built2{"\0built2", 7};
  // Counts W + type, A (recipient or sender pair + status) and the sender pairs (later).
  static constexpr std::string_view k_counts_built3{"\0built3", 7};

  lmdb::Env m_env;
  std::uint32_t m_reserve_percent = 0;
  std::unique_ptr<MapPages> m_pages; // OpenOptions::write_mostly only
  MDB_dbi m_credentials = 0;
  MDB_dbi m_jobs = 0;
  MDB_dbi m_counts = 0;
  bool m_have_counts = false;
  bool m_have_v2 = false; // counts X, W and the address index are there
  bool m_have_v3 = false; // counts W + type, A and the sender pairs are there
  MDB_dbi m_idx_addr = 0, m_addrs = 0;
  MDB_dbi m_messages = 0, m_deliveries = 0, m_events = 0, m_tokens = 0, m_blobs = 0,
          m_consultations = 0, m_msgids = 0, m_idem = 0, m_idx_sent = 0, m_idx_status = 0,
          m_idx_type = 0, m_idx_consult = 0, m_idx_word = 0, m_replies = 0;
};

} // namespace pli::store::detail
