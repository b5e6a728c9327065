// LmdbStore: queries. Ordered index streams (merged scans, word streams, intersections),
// the walk that runs a Query over them, list (a page and its total), totals from the
// per-day counts, and for_each.
#include "core/store/evidence.hpp"
#include "core/store/lmdb_store_impl.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

namespace pli::store::detail {

namespace {

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

// Rows collected from the index, then ordered and made unique (`finish`).
class CollectedTails : public Stream
{
public:
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

protected:
  void finish()
  {
    std::sort(m_tails.begin(), m_tails.end());
    m_tails.erase(std::unique(m_tails.begin(), m_tails.end()), m_tails.end());
  }

  std::vector<std::string> m_tails;
  std::size_t m_pos = 0;
  int m_rc = 0;
};

// Word index entries under a word prefix (word, 0, inv(t), id): several words may start
// with the prefix, so these are collected, ordered and made unique.
class WordStream final : public CollectedTails
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
    m_rc = lmdb::scan_prefix(cur.get(), prefix, prefix, [&](std::string_view key, auto) {
      std::string_view rest = key.substr(prefix.size());
      auto nul = rest.find('\0');
      if (nul == std::string_view::npos || rest.size() - nul - 1 <= 8) {
        return true;
      }
      rest = rest.substr(nul + 1);
      util::Micros t = from_inv_time(rest.substr(0, 8));
      if ((!since || t >= *since) && (!until || t < *until)) {
        m_tails.emplace_back(rest);
      }
      return true;
    });
    finish();
  }
};

// Index entries under many fixed prefixes (prefix, inv(t), id), too many to merge as they
// are read: collected, ordered and made unique.
class CollectedStream final : public CollectedTails
{
public:
  CollectedStream(MDB_txn* txn, MDB_dbi dbi, const std::vector<std::string>& prefixes,
                  std::optional<util::Micros> since, std::optional<util::Micros> until)
  {
    lmdb::Cursor cur(txn, dbi);
    if (cur.rc() != 0) {
      m_rc = cur.rc();
      return;
    }
    for (const auto& prefix : prefixes) {
      const std::string start = prefix + (until ? inv_time(*until - 1) : std::string());
      int rc = lmdb::scan_prefix(cur.get(), start, prefix, [&](std::string_view key, auto) {
        std::string_view rest = key.substr(prefix.size());
        if (rest.size() <= 8 || (since && from_inv_time(rest.substr(0, 8)) < *since)) {
          return false;
        }
        m_tails.emplace_back(rest);
        return true;
      });
      if (rc != 0) {
        m_rc = rc;
        return;
      }
    }
    finish();
  }
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

} // namespace

int LmdbStore::words_with_prefix(MDB_txn* txn, const std::string& prefix, std::size_t max,
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

int LmdbStore::addresses_containing(MDB_txn* txn, char kind, const std::string& needle,
                                    std::vector<std::string>& out)
{
  lmdb::Cursor cur(txn, m_addrs);
  if (cur.rc() != 0) {
    return cur.rc();
  }
  const std::string start(1, kind);
  return lmdb::scan_prefix(
      cur.get(), start, start, [&](std::string_view key, std::string_view value) {
        if (value.size() > 8 && value.substr(8).find(needle) != std::string_view::npos) {
          out.emplace_back(key);
        }
        return true;
      });
}

// Runs a query: `fn(sent_at, delivery id, records)` for every matching row, newest first,
// until it returns false. The indexes answer status, type, consultation, keywords and the
// date range together (their ordered streams are intersected), and so does the address
// index for recipient and senders (the distinct addresses that match, then their postings).
// A store opened read-only without the address index filters on the records. When no
// record is needed, none is read (`records` is null) and the caller reads the rows it keeps.
util::Status LmdbStore::walk(lmdb::Txn& txn, const Query& q, bool need_records, const RowFn& fn,
                             bool recipient_on_records)
{
  std::vector<std::unique_ptr<Stream>> streams;
  // The postings of some addresses: merged as read when few, else collected and sorted.
  auto address_stream = [&](std::vector<std::string> ids) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (ids.size() <= 64) {
      streams.push_back(
          std::make_unique<MergedScan>(txn.get(), m_idx_addr, std::move(ids), q.since, q.until));
    } else {
      streams.push_back(
          std::make_unique<CollectedStream>(txn.get(), m_idx_addr, ids, q.since, q.until));
    }
  };
  const bool by_index = m_have_v2;
  if (by_index) {
    if (!q.recipient.empty() && !recipient_on_records) {
      std::vector<std::string> ids;
      if (int rc = addresses_containing(txn.get(), 'r', util::ascii_lower(q.recipient), ids);
          rc != 0) {
        return lmdb_error(rc, "address index");
      }
      address_stream(std::move(ids));
    }
    if (!q.sender.empty()) {
      std::vector<std::string> ids;
      const std::string needle = util::ascii_lower(q.sender);
      int rc = addresses_containing(txn.get(), 's', needle, ids);
      rc = rc != 0 ? rc : addresses_containing(txn.get(), 'f', needle, ids);
      if (rc != 0) {
        return lmdb_error(rc, "address index");
      }
      address_stream(std::move(ids));
    }
    if (!q.senders.empty()) {
      std::vector<std::string> ids;
      for (const auto& s : q.senders) {
        ids.push_back(addr_id('s', util::ascii_lower(s)));
      }
      address_stream(std::move(ids));
    }
  }
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

  // The recipient filtered on the records (its postings are not scanned): each row's
  // delivery is read, and the rows of other recipients skipped.
  const bool read_records =
      need_records || recipient_on_records ||
      (!m_have_v2 && (!q.recipient.empty() || !q.sender.empty() || !q.senders.empty()));
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
    const pb::Message* cached =
        cached_message(txn, messages, d->message(), [](pb::Message m) { return m; });
    if (cached == nullptr) {
      return true;
    }
    const pb::Message& m = *cached;
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
  // Totals from the per-day counts when the filters have counts of their own (none; one of
  // statuses, type, consultation; statuses and type; one keyword that starts one indexed
  // word only), with or without a date range: then the scan stops once the page is full.
  std::vector<CountKey> prefixes;
  const auto words = index_words(q.keywords);
  const bool by_address = !q.recipient.empty() || !q.sender.empty() || !q.senders.empty();
  if (m_have_counts && !by_address) {
    const std::set<model::Status> statuses(q.statuses.begin(), q.statuses.end());
    const bool cons = !q.consultation.empty();
    const bool stat = !statuses.empty();
    if (words.empty() && !cons && !stat && !q.type) {
      prefixes.emplace_back("s");
    } else if (words.empty() && !cons && stat && !q.type) {
      for (auto st : statuses) {
        prefixes.push_back("S" + std::string(1, static_cast<char>(st)));
      }
    } else if (words.empty() && !cons && !stat && q.type) {
      prefixes.push_back("T" + std::string(1, static_cast<char>(*q.type)));
    } else if (words.empty() && cons && !stat && !q.type) {
      prefixes.push_back("C" + q.consultation + std::string(1, '\0'));
    } else if (m_have_v2 && words.empty() && !cons && stat && q.type) {
      for (auto st : statuses) {
        prefixes.push_back("X" + std::string(1, static_cast<char>(st)) +
                           std::string(1, static_cast<char>(*q.type)));
      }
    } else if (m_have_v2 && words.size() == 1 && !cons && !stat && !q.type) {
      std::vector<std::string> found;
      if (int rc = words_with_prefix(txn.get(), words.front(), 1, found); rc != 0) {
        return lmdb_error(rc, "word index");
      }
      if (found.size() == 1) { // several words: a row may hold more than one
        prefixes.push_back("W" + found.front() + std::string(1, '\0'));
      } else if (found.empty()) {
        return result; // no such word: no row
      }
    }
  }
  // The recipient filter alone, matching many addresses, no date range: the total is the sum
  // of their counts (one recipient per delivery), and the page comes from the send-time
  // index filtered on the records (stopping once full) rather than from sorted postings.
  bool recipient_on_records = false;
  std::size_t known_total = 0;
  if (m_have_v2 && !q.recipient.empty() && q.sender.empty() && q.senders.empty() &&
      q.statuses.empty() && !q.type && q.consultation.empty() && words.empty() && !q.since &&
      !q.until) {
    std::vector<std::string> ids;
    if (int rc = addresses_containing(txn.get(), 'r', util::ascii_lower(q.recipient), ids);
        rc != 0) {
      return lmdb_error(rc, "address index");
    }
    if (ids.size() > 64) {
      for (const auto& id : ids) {
        MDB_val k = val(id);
        MDB_val v;
        if (int rc = mdb_get(txn.get(), m_addrs, &k, &v); rc != 0) {
          return lmdb_error(rc, "address index");
        }
        std::int64_t c = 0;
        if (v.mv_size >= 8) {
          std::memcpy(&c, v.mv_data, 8);
        }
        known_total += static_cast<std::size_t>(std::max<std::int64_t>(c, 0));
      }
      recipient_on_records = true;
    }
  }
  // One recipient or sender filter with statuses (and a date range or not): the counts of
  // each matching address (a recipient, or a sender pair: every delivery has one of each)
  // in each status.
  if (m_have_v3 && by_address && q.senders.empty() && !q.statuses.empty() && !q.type &&
      q.consultation.empty() && words.empty() && (q.recipient.empty() != q.sender.empty()) &&
      q.sender.find('\n') == std::string::npos) {
    std::vector<std::string> ids;
    const bool rcpt = !q.recipient.empty();
    if (int rc = addresses_containing(txn.get(), rcpt ? 'r' : 'p',
                                      util::ascii_lower(rcpt ? q.recipient : q.sender), ids);
        rc != 0) {
      return lmdb_error(rc, "address index");
    }
    if (ids.empty()) {
      return result; // no such address: no row
    }
    // Many recipients (a domain, say): the page from the status index filtered on the
    // records, stopping once full, rather than from their sorted postings.
    recipient_on_records = rcpt && ids.size() > 64;
    const std::set<model::Status> statuses(q.statuses.begin(), q.statuses.end());
    for (const auto& id : ids) {
      for (auto st : statuses) {
        prefixes.emplace_back("A" + id, std::string(1, static_cast<char>(st)));
      }
    }
  }
  // Combined filters that no single count answers (a keyword with a status, say): day by day
  // from the per-day counts of each filter (count_days), when every keyword starts few words.
  // A type with keywords and no status: the words' counts of that type.
  std::vector<CountedFilter> filters;
  if (m_have_counts && m_have_v2 && !by_address && prefixes.empty() && !recipient_on_records) {
    const std::set<model::Status> statuses(q.statuses.begin(), q.statuses.end());
    const bool typed_words = m_have_v3 && q.type && statuses.empty() && !words.empty();
    const std::string word_suffix =
        typed_words ? std::string(1, static_cast<char>(*q.type)) : std::string();
    bool plannable = true;
    if (!statuses.empty()) {
      CountedFilter f;
      for (auto st : statuses) {
        f.keys.push_back((q.type ? "X" : "S") + std::string(1, static_cast<char>(st)) +
                         (q.type ? std::string(1, static_cast<char>(*q.type)) : std::string()));
      }
      filters.push_back(std::move(f));
    } else if (q.type && !typed_words) {
      filters.push_back(CountedFilter{{"T" + std::string(1, static_cast<char>(*q.type))}, true});
    }
    if (!q.consultation.empty()) {
      filters.push_back(CountedFilter{{"C" + q.consultation + std::string(1, '\0')}, true});
    }
    for (const auto& w : words) {
      std::vector<std::string> found;
      if (int rc = words_with_prefix(txn.get(), w, 8, found); rc != 0) {
        return lmdb_error(rc, "word index");
      }
      if (found.empty()) {
        return result; // no such word: no row
      }
      plannable = plannable && found.size() <= 8;
      CountedFilter f;
      f.exact = found.size() == 1;
      for (const auto& word : found) {
        f.keys.emplace_back("W" + word + std::string(1, '\0'), word_suffix);
      }
      filters.push_back(std::move(f));
    }
    if (!plannable || filters.size() < (typed_words ? 1U : 2U)) {
      filters.clear();
    }
  }
  const bool counted = !prefixes.empty() || recipient_on_records || !filters.empty();
  if (!prefixes.empty() || !filters.empty()) {
    auto n = count_range(txn, q, [&](auto first_day, auto end_day) {
      return filters.empty() ? sum_counts(txn, prefixes, first_day, end_day)
                             : count_days(txn, q, filters, first_day, end_day);
    });
    if (!n) {
      return n.error();
    }
    known_total = n.value();
  }
  std::vector<std::string> page_ids;
  std::size_t n = 0;
  auto st = walk(
      txn, q, false,
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
        return !(counted && n >= first + per_page);
      },
      recipient_on_records);
  if (!st) {
    return st.error();
  }
  result.total = counted ? known_total : n;
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

Result<std::size_t> LmdbStore::count_rows(lmdb::Txn& txn, const Query& q,
                                          std::optional<util::Micros> since,
                                          std::optional<util::Micros> until)
{
  Query part = q;
  part.since = since;
  part.until = until;
  std::size_t n = 0;
  auto st = walk(txn, part, false, [&](util::Micros, std::string_view, auto*, auto*) {
    ++n;
    return true;
  });
  if (!st) {
    return st.error();
  }
  return n;
}

Result<std::size_t> LmdbStore::count_range(lmdb::Txn& txn, const Query& q,
                                           const DaysCounter& whole_days)
{
  constexpr util::Micros k_day_us = 86400LL * 1000000LL;
  // Whole days [first_day, end_day): from the counts; the partial days: from the indexes.
  std::optional<util::Micros> first_day;
  std::optional<util::Micros> end_day;
  if (q.since) {
    first_day = day_number(*q.since + k_day_us - 1);
  }
  if (q.until) {
    end_day = day_number(*q.until);
  }
  if (first_day && end_day && *first_day >= *end_day) {
    return count_rows(txn, q, q.since, q.until);
  }
  std::size_t n = 0;
  if (q.since && *q.since < *first_day * k_day_us) {
    auto head = count_rows(txn, q, q.since, *first_day * k_day_us);
    if (!head) {
      return head.error();
    }
    n += head.value();
  }
  if (q.until && *end_day * k_day_us < *q.until) {
    auto tail = count_rows(txn, q, *end_day * k_day_us, q.until);
    if (!tail) {
      return tail.error();
    }
    n += tail.value();
  }
  auto days = whole_days(first_day, end_day);
  if (!days) {
    return days.error();
  }
  return n + days.value();
}

int LmdbStore::day_counts(MDB_txn* txn, const CountKey& ck, std::optional<util::Micros> first,
                          std::optional<util::Micros> end,
                          std::map<util::Micros, std::int64_t>& out)
{
  const std::string& prefix = ck.prefix;
  const std::string& suffix = ck.suffix;
  lmdb::Cursor cur(txn, m_counts);
  if (cur.rc() != 0) {
    return cur.rc();
  }
  const std::string start = prefix + (first ? day_bytes(*first) : std::string());
  const std::string stop = end ? prefix + day_bytes(*end) : std::string();
  return lmdb::scan_prefix(
      cur.get(), start, prefix, [&](std::string_view key, std::string_view value) {
        if (!stop.empty() && key >= stop) {
          return false;
        }
        // Another key sharing the prefix: the same day with another suffix (or none).
        if (key.size() != prefix.size() + 8 + suffix.size() ||
            key.substr(prefix.size() + 8) != suffix) {
          return true;
        }
        std::uint64_t day = 0;
        for (std::size_t i = prefix.size(); i < prefix.size() + 8; ++i) {
          day = (day << 8) | static_cast<unsigned char>(key[i]);
        }
        std::int64_t c = 0;
        if (value.size() == 8) {
          std::memcpy(&c, value.data(), 8);
        }
        out[static_cast<util::Micros>(day ^ (1ULL << 63))] += std::max<std::int64_t>(c, 0);
        return true;
      });
}

Result<std::size_t> LmdbStore::sum_counts(lmdb::Txn& txn, const std::vector<CountKey>& keys,
                                          std::optional<util::Micros> first,
                                          std::optional<util::Micros> end)
{
  std::map<util::Micros, std::int64_t> days;
  for (const auto& key : keys) {
    if (int rc = day_counts(txn.get(), key, first, end, days); rc != 0) {
      return lmdb_error(rc, "list counts");
    }
  }
  std::size_t n = 0;
  for (const auto& [day, c] : days) {
    n += static_cast<std::size_t>(c);
  }
  return n;
}

Result<std::size_t> LmdbStore::count_days(lmdb::Txn& txn, const Query& q,
                                          const std::vector<CountedFilter>& filters,
                                          std::optional<util::Micros> first,
                                          std::optional<util::Micros> end)
{
  constexpr util::Micros k_day_us = 86400LL * 1000000LL;
  std::map<util::Micros, std::int64_t> all;
  if (int rc = day_counts(txn.get(), CountKey("s"), first, end, all); rc != 0) {
    return lmdb_error(rc, "list counts");
  }
  // Per filter and key: day -> count.
  std::vector<std::vector<std::map<util::Micros, std::int64_t>>> counts(filters.size());
  for (std::size_t f = 0; f < filters.size(); ++f) {
    for (const auto& key : filters[f].keys) {
      counts[f].emplace_back();
      if (int rc = day_counts(txn.get(), key, first, end, counts[f].back()); rc != 0) {
        return lmdb_error(rc, "list counts");
      }
    }
  }
  auto at = [](const std::map<util::Micros, std::int64_t>& m, util::Micros day) {
    auto it = m.find(day);
    return it == m.end() ? std::int64_t{0} : it->second;
  };
  // Days that need the indexes are counted by runs of consecutive days: one scan each.
  std::size_t n = 0;
  std::optional<util::Micros> run_first;
  util::Micros run_end = 0;
  auto flush = [&]() -> util::Status {
    if (run_first) {
      auto part = count_rows(txn, q, *run_first * k_day_us, run_end * k_day_us);
      if (!part) {
        return part.error();
      }
      n += part.value();
      run_first.reset();
    }
    return util::ok_status();
  };
  for (const auto& [day, everything] : all) {
    bool none = false;
    std::size_t unsaturated = 0;
    std::int64_t only = everything; // the count of the one unsaturated filter, when exact
    bool only_exact = true;
    for (std::size_t f = 0; f < filters.size() && !none; ++f) {
      std::int64_t sum = 0;
      bool saturated = false;
      for (const auto& per_key : counts[f]) {
        const std::int64_t c = at(per_key, day);
        sum += c;
        saturated = saturated || c >= everything; // one key alone matches every delivery
      }
      if (sum == 0) {
        none = true;
      } else if (!saturated && !(filters[f].exact && sum >= everything)) {
        ++unsaturated;
        only = sum;
        only_exact = filters[f].exact;
      }
    }
    if (none) {
      continue; // no row that day: a run of scanned days may go on over it
    }
    if (unsaturated == 0 || (unsaturated == 1 && only_exact)) {
      if (auto st = flush(); !st) {
        return st.error();
      }
      n += static_cast<std::size_t>(only);
      continue;
    }
    if (!run_first) {
      run_first = day;
    }
    run_end = day + 1;
  }
  if (auto st = flush(); !st) {
    return st.error();
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

} // namespace pli::store::detail
