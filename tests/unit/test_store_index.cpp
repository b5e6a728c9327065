// The store's address index and list totals against brute force: random messages,
// deliveries and events; every query's total and page compared with what a filter over
// all the records finds (the documented semantics, written here a second time); again
// after a purge; and after the store is turned back into an older one (no address index,
// no status+type or word counts): read-only it filters on the records, read-write it
// builds the missing indexes on open. Then concurrent appends (group commit). The same on
// PostgreSQL, but for the LMDB store's older versions.
#include "core/store/evidence.hpp"
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include "tests/unit/store_backends.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <thread>

namespace fs = std::filesystem;
using namespace pli;
using model::EventKind;
using model::Status;

namespace {

using pli::test::TempDir;

constexpr util::Micros k_hour = 3600LL * 1000000LL;
constexpr util::Micros k_t0 = 1656685605LL * 1000000LL;

const char* const k_words[] = {"attribution", "attributions", "attestation", "rejet",
                               "Réponse",     "reponses",     "marché",      "lot",
                               "décision",    "candidature",  "complément",  "pièce"};

struct World
{
  std::mt19937 rnd{20260729};
  int pick(int n) { return static_cast<int>(rnd() % static_cast<unsigned>(n)); }
  std::string words(int n)
  {
    std::string out;
    for (int i = 0; i < n; ++i) {
      out += std::string(i ? " " : "") + k_words[pick(12)];
    }
    return out;
  }
  // Random case: the filters ignore ASCII case.
  std::string mixed(std::string s)
  {
    for (auto& c : s) {
      if (pick(3) == 0) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
    }
    return s;
  }
};

store::NewMessage random_message(World& w, int n)
{
  store::NewMessage nm;
  auto& m = nm.message;
  m.set_id(fmt::format("m{:04}", n));
  m.set_subject(w.words(1 + w.pick(3)) + fmt::format(" n°{}", n));
  // Over about 12 days, so that date ranges cut days in the middle.
  m.set_sent_at(k_t0 + static_cast<util::Micros>(w.pick(12 * 24 * 60)) * 60 * 1000000LL);
  // A signature in every message of the first 6 days and in about half of the others: a
  // word that matches every delivery of some days (the per-day counts answer), not others.
  const bool early = m.sent_at() < k_t0 + 6 * 24 * k_hour;
  m.set_text_body(w.words(w.pick(6)) + (early || w.pick(2) == 0 ? " Signature du service" : ""));
  m.set_type(static_cast<std::uint32_t>(1 + w.pick(8)));
  m.set_mode(1);
  const int buyer = w.pick(7);
  m.set_sender(w.mixed(fmt::format("acheteur{}@buyer.example", buyer)));
  if (w.pick(4) != 0) {
    m.set_from_header(fmt::format("Acheteur {} <acheteur{}@buyer.example>", buyer, buyer));
  }
  if (w.pick(3) == 0) {
    m.set_consultation(fmt::format("REF{}", w.pick(4)));
  }
  const int rcpts = 1 + w.pick(3);
  std::set<std::string> seen;
  for (int i = 0; i < rcpts; ++i) {
    std::string r = w.mixed(fmt::format("contact{}@dom{}.example", w.pick(40), w.pick(3)));
    if (!seen.insert(util::ascii_lower(r)).second) {
      continue;
    }
    store::pb::Delivery d;
    d.set_id(fmt::format("d{:04}x{}", n, i));
    d.set_recipient(r);
    m.add_delivery_ids(d.id());
    nm.deliveries.push_back(d);
  }
  return nm;
}

// The documented semantics of a Query, over one delivery and its message.
bool matches(const store::Query& q, const store::pb::Delivery& d, const store::pb::Message& m)
{
  auto contains = [](const std::string& hay, const std::string& needle) {
    return util::ascii_lower(hay).find(util::ascii_lower(needle)) != std::string::npos;
  };
  if (!q.statuses.empty() && std::find(q.statuses.begin(), q.statuses.end(),
                                       static_cast<Status>(d.status())) == q.statuses.end()) {
    return false;
  }
  if (q.type && static_cast<std::uint32_t>(*q.type) != m.type()) {
    return false;
  }
  if (!q.recipient.empty() && !contains(d.recipient(), q.recipient)) {
    return false;
  }
  if (!q.sender.empty() && !contains(m.sender(), q.sender) &&
      !contains(m.from_header(), q.sender)) {
    return false;
  }
  if (!q.senders.empty() &&
      std::none_of(q.senders.begin(), q.senders.end(), [&](const std::string& s) {
        return util::ascii_lower(s) == util::ascii_lower(m.sender());
      })) {
    return false;
  }
  if (!q.consultation.empty() && q.consultation != m.consultation()) {
    return false;
  }
  const auto text = store::index_words(m.subject() + "\n" + m.text_body());
  for (const auto& k : store::index_words(q.keywords)) {
    if (std::none_of(text.begin(), text.end(),
                     [&](const std::string& t) { return t.rfind(k, 0) == 0; })) {
      return false;
    }
  }
  if (q.since && m.sent_at() < *q.since) {
    return false;
  }
  if (q.until && m.sent_at() >= *q.until) {
    return false;
  }
  return true;
}

// Every record of the messages that are still there (read once for many queries).
struct Records
{
  std::vector<std::pair<store::pb::Message, std::vector<store::pb::Delivery>>> messages;
};

Records read_records(store::Store& st, const std::vector<std::string>& messages)
{
  Records out;
  for (const auto& mid : messages) {
    auto m = st.get_message(mid);
    if (!m) {
      continue; // purged
    }
    std::vector<store::pb::Delivery> deliveries;
    for (const auto& did : m->delivery_ids()) {
      auto d = st.get_delivery(did);
      REQUIRE(d.ok());
      deliveries.push_back(std::move(d.value()));
    }
    out.messages.emplace_back(std::move(m.value()), std::move(deliveries));
  }
  return out;
}

// Every delivery matching `q`, newest first (ties by delivery id), from all the records.
std::vector<std::string> brute_force(const Records& records, const store::Query& q)
{
  std::vector<std::pair<util::Micros, std::string>> rows;
  for (const auto& [m, deliveries] : records.messages) {
    for (const auto& d : deliveries) {
      if (matches(q, d, m)) {
        rows.emplace_back(-m.sent_at(), d.id());
      }
    }
  }
  std::sort(rows.begin(), rows.end());
  std::vector<std::string> out;
  for (auto& r : rows) {
    out.push_back(r.second);
  }
  return out;
}

std::vector<store::Query> random_queries(World& w, int n)
{
  std::vector<store::Query> out;
  const char* const rcpts[] = {"contact1", "CONTACT12@", "@dom2",    "contact3@dom1.example",
                               "nobody",   "t2",         ".example", "contact39@DOM0"};
  const char* const senders[] = {"acheteur3@", "Acheteur 5", "buyer", "ACHETEUR1", "nobody"};
  const char* const keywords[] = {"attribution", "attrib",   "reponse", "réponses", "lot",
                                  "marche lot",  "decision", "zzz",     "piece",    "rejet"};
  for (int i = 0; i < n; ++i) {
    store::Query q;
    const int filters = 1 + w.pick(3);
    for (int f = 0; f < filters; ++f) {
      switch (w.pick(8)) {
      case 0:
        q.statuses.push_back(static_cast<Status>(1 + w.pick(4)));
        break;
      case 1:
        q.type = static_cast<model::MessageType>(1 + w.pick(8));
        break;
      case 2:
        q.recipient = rcpts[w.pick(8)];
        break;
      case 3:
        q.sender = senders[w.pick(5)];
        break;
      case 4:
        q.senders.push_back(w.mixed(fmt::format("acheteur{}@buyer.example", w.pick(8))));
        break;
      case 5:
        q.consultation = fmt::format("REF{}", w.pick(5));
        break;
      case 6:
        q.keywords = keywords[w.pick(10)];
        break;
      default:
        q.since = k_t0 + static_cast<util::Micros>(w.pick(12 * 24)) * k_hour + 12345;
        if (w.pick(2) == 0) {
          q.until = *q.since + static_cast<util::Micros>(1 + w.pick(6 * 24)) * k_hour;
        }
        break;
      }
    }
    q.per_page = 1 + static_cast<std::size_t>(w.pick(20));
    q.page = 1 + static_cast<std::size_t>(w.pick(3));
    out.push_back(q);
  }
  // The typical combinations, each alone and with a date range.
  for (int s = 1; s <= 4; ++s) {
    store::Query q;
    q.type = model::MessageType::rejet;
    q.statuses = {static_cast<Status>(s)};
    out.push_back(q);
    q.statuses.push_back(Status::read);
    q.since = k_t0 + 30 * k_hour + 17;
    out.push_back(q);
  }
  // A recipient substring alone that matches very many addresses (totals from their
  // counts, pages from the records), then the same with other filters.
  for (const char* r : {".example", "@dom", "CONTACT", "1", "2"}) {
    for (std::size_t page : {1, 3}) {
      store::Query q;
      q.recipient = r;
      q.page = page;
      q.per_page = 7;
      out.push_back(q);
      q.statuses = {Status::read};
      out.push_back(q);
    }
  }
  for (const char* k : keywords) {
    store::Query q;
    q.keywords = k;
    out.push_back(q);
    q.until = k_t0 + 100 * k_hour + 3;
    out.push_back(q);
  }
  // `q` alone, from a time in a day, and within a range of days.
  auto with_ranges = [&out](store::Query q) {
    out.push_back(q);
    q.since = k_t0 + 30 * k_hour + 17;
    out.push_back(q);
    q.until = k_t0 + 200 * k_hour + 5;
    out.push_back(q);
  };
  // A recipient or a sender with statuses, and keywords with a type (totals from the counts
  // of each address in each status, and of each word of each type), alone and with ranges.
  for (int i = 0; i < 24; ++i) {
    store::Query q;
    if (i % 3 == 0) {
      q.recipient = rcpts[i % 8];
    } else {
      q.sender = senders[i % 5];
    }
    q.statuses = {static_cast<Status>(1 + i % 4)};
    if (i % 4 == 1) {
      q.statuses.push_back(Status::read);
    }
    q.per_page = 4;
    q.page = 1 + static_cast<std::size_t>(i % 2);
    with_ranges(q);
  }
  for (const char* k : {"attestation", "attrib", "signature", "lot sign", "zzz"}) {
    for (int t = 1; t <= 8; t += 3) {
      store::Query q;
      q.keywords = k;
      q.type = static_cast<model::MessageType>(t);
      q.per_page = 6;
      with_ranges(q);
    }
  }
  // Keywords with other filters (totals day by day from the per-day counts): a word in every
  // message of some days, a prefix of several words, rare words, no word.
  for (const char* k : {"signature", "service", "sign", "attrib", "marche", "zzz", "lot sign"}) {
    for (int combo = 0; combo < 5; ++combo) {
      store::Query q;
      q.keywords = k;
      if (combo == 0 || combo == 3) {
        q.statuses = {Status::read};
      }
      if (combo == 1) {
        q.statuses = {Status::delivered, Status::read};
      }
      if (combo == 2 || combo == 3) {
        q.type = model::MessageType::rejet;
      }
      if (combo == 4) {
        q.consultation = "REF1";
      }
      q.per_page = 5;
      with_ranges(q);
    }
  }
  return out;
}

void check_all(store::Store& st, const std::vector<std::string>& messages,
               const std::vector<store::Query>& queries)
{
  std::size_t nonempty = 0;
  const Records records = read_records(st, messages);
  for (const auto& q : queries) {
    const auto expected = brute_force(records, q);
    auto r = st.list(q);
    REQUIRE(r.ok());
    INFO("rcpt=" << q.recipient << " sender=" << q.sender << " senders=" << q.senders.size()
                 << " keywords=" << q.keywords << " type=" << (q.type ? int(*q.type) : 0)
                 << " statuses=" << q.statuses.size() << " consultation=" << q.consultation
                 << " since=" << q.since.value_or(0) << " until=" << q.until.value_or(0));
    CHECK(r->total == expected.size());
    std::vector<std::string> page;
    for (const auto& it : r->items) {
      page.push_back(it.delivery.id());
    }
    const std::size_t first = (q.page - 1) * q.per_page;
    std::vector<std::string> want;
    for (std::size_t i = first; i < expected.size() && i < first + q.per_page; ++i) {
      want.push_back(expected[i]);
    }
    CHECK(page == want);
    std::vector<std::string> visited;
    REQUIRE(st.for_each(q, [&](const store::ListItem& it) {
                visited.push_back(it.delivery.id());
                return true;
              }).ok());
    CHECK(visited == expected);
    nonempty += expected.empty() ? 0 : 1;
  }
  CHECK(nonempty > queries.size() / 3); // the queries find something
}

// Opens the store's LMDB environment directly and runs `fn` in one write transaction.
void in_raw_txn(const fs::path& path, const std::function<void(MDB_txn*)>& fn)
{
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_maxdbs(env, 32);
  REQUIRE(mdb_env_open(env, path.c_str(), 0, 0660) == 0);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  fn(txn);
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

// Deletes the keys of database `name` that `doomed` selects; returns how many.
int delete_keys(MDB_txn* txn, const char* name,
                const std::function<bool(const std::string&)>& doomed)
{
  MDB_dbi dbi;
  REQUIRE(mdb_dbi_open(txn, name, 0, &dbi) == 0);
  MDB_cursor* cur = nullptr;
  REQUIRE(mdb_cursor_open(txn, dbi, &cur) == 0);
  MDB_val k;
  MDB_val v;
  int removed = 0;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (doomed(std::string(static_cast<const char*>(k.mv_data), k.mv_size))) {
      REQUIRE(mdb_cursor_del(cur, 0) == 0);
      ++removed;
    }
  }
  mdb_cursor_close(cur);
  return removed;
}

// Turns the store back into one made before the address index and the status+type, word
// and address counts: those databases and keys removed, the markers of their build gone.
void make_old(const fs::path& path)
{
  int removed = 0;
  in_raw_txn(path, [&](MDB_txn* txn) {
    for (const char* name : {"idx_addr", "addrs"}) {
      MDB_dbi dbi;
      REQUIRE(mdb_dbi_open(txn, name, 0, &dbi) == 0);
      REQUIRE(mdb_drop(txn, dbi, 1) == 0);
    }
    removed = delete_keys(txn, "counts", [](const std::string& key) {
      return key[0] == 'X' || key[0] == 'W' || key[0] == 'A' || key == std::string("\0built2", 7) ||
             key == std::string("\0built3", 7);
    });
  });
  CHECK(removed > 10);
}

// Turns the store back into one of the version before the counts of words by type, of
// addresses by status and the sender pairs: those keys removed, the marker gone.
void make_v2(const fs::path& path)
{
  int removed = 0;
  in_raw_txn(path, [&](MDB_txn* txn) {
    removed = delete_keys(txn, "counts", [](const std::string& key) {
      const auto nul = key.find('\0', 1);
      const bool typed_word = key[0] == 'W' && nul != std::string::npos && key.size() == nul + 10;
      return key[0] == 'A' || typed_word || key == std::string("\0built3", 7);
    });
    removed += delete_keys(txn, "addrs", [](const std::string& key) { return key[0] == 'p'; });
  });
  CHECK(removed > 10);
}

// 400 random messages with events in `st`; every random query against brute force, before
// and after a purge of the first two days.
void fill_and_check(store::Store& st, World& w, std::vector<std::string>& messages)
{
  for (int n = 0; n < 400; ++n) {
    auto nm = random_message(w, n);
    REQUIRE(st.create_message(nm).ok());
    messages.push_back(nm.message.id());
    for (const auto& d : nm.deliveries) {
      std::vector<store::NewEvent> evs{{d.id(), EventKind::sent, k_t0, {}, {}}};
      switch (w.pick(5)) {
      case 0:
        evs.push_back({d.id(), EventKind::failed, k_t0, {}, {}});
        break;
      case 1:
        evs.push_back({d.id(), EventKind::delivered, k_t0, {}, {}});
        break;
      case 2:
        evs.push_back({d.id(), EventKind::delivered, k_t0, {}, {}});
        evs.push_back({d.id(), EventKind::read, k_t0, {}, {}});
        break;
      default:
        break;
      }
      REQUIRE(st.append_events(evs).ok());
    }
  }
  const auto queries = random_queries(w, 400);
  check_all(st, messages, queries);
  // Purge the first two days: postings, addresses and counts go with the deliveries.
  REQUIRE(st.purge(k_t0 + 48 * k_hour + 5, store::PurgeMode::apply).ok());
  check_all(st, messages, queries);
}

// The store of a concurrency test: LMDB with group_wait_us `wait_us`, or PostgreSQL when
// `wait_us` is negative (a fresh database in `pg`).
std::unique_ptr<store::Store> open_concurrent(int wait_us, const TempDir& dir,
                                              std::optional<test::PgDatabase>& pg)
{
  if (wait_us < 0) {
    pg.emplace();
    return pg->open();
  }
  store::OpenOptions options{dir.path.string(), 64, false};
  options.group_wait_us = static_cast<std::uint32_t>(wait_us);
  auto opened = store::open_lmdb(options);
  REQUIRE(opened.ok());
  return std::move(opened.value());
}

} // namespace

TEST_CASE("list and for_each equal brute force over the records: addresses, senders, "
          "status+type and word totals, ranges, purge, and an older store upgraded",
          "[store][index]")
{
  TempDir dir;
  World w;
  std::vector<std::string> messages;
  {
    auto opened = store::open_lmdb({dir.path.string(), 64, false});
    REQUIRE(opened.ok());
    fill_and_check(*opened.value(), w, messages);
  }
  // A store of the version before: read-only, totals as that version made them; read-write,
  // the new counts are built on open.
  make_v2(dir.path);
  {
    auto ro = store::open_lmdb({dir.path.string(), 64, true});
    REQUIRE(ro.ok());
    check_all(*ro.value(), messages, random_queries(w, 100));
  }
  {
    auto rw = store::open_lmdb({dir.path.string(), 64, false});
    REQUIRE(rw.ok());
    check_all(*rw.value(), messages, random_queries(w, 100));
  }
  make_old(dir.path);
  const auto queries = random_queries(w, 150);
  {
    auto ro = store::open_lmdb({dir.path.string(), 64, true});
    REQUIRE(ro.ok());
    check_all(*ro.value(), messages, queries);
  }
  {
    auto rw = store::open_lmdb({dir.path.string(), 64, false});
    REQUIRE(rw.ok());
    check_all(*rw.value(), messages, queries);
    // New writes keep the rebuilt indexes exact.
    for (int n = 400; n < 450; ++n) {
      auto nm = random_message(w, n);
      REQUIRE(rw.value()->create_message(nm).ok());
      messages.push_back(nm.message.id());
      REQUIRE(rw.value()
                  ->append_events({{nm.deliveries[0].id(), EventKind::delivered, k_t0, {}, {}}})
                  .ok());
    }
    check_all(*rw.value(), messages, queries);
  }
}

TEST_CASE("list and for_each equal brute force over the records on PostgreSQL: every filter's "
          "total and page, ranges, purge",
          "[store][index][pg]")
{
  test::PgDatabase db;
  World w;
  std::vector<std::string> messages;
  auto st = db.open();
  fill_and_check(*st, w, messages);
  // check() reads every record once, through several pages of its cursor.
  std::size_t records = 0;
  for (const auto& mid : messages) {
    if (auto m = st->get_message(mid)) {
      records +=
          1 + static_cast<std::size_t>(m->delivery_ids_size()) + st->events_of_message(mid)->size();
    }
  }
  auto report = st->check(store::CheckMode::report);
  REQUIRE(report.ok());
  CHECK(report->damaged.empty());
  CHECK(records > 1500);
  CHECK(report->records == records);
}

TEST_CASE("concurrent appends share commits: each caller's events are committed when it "
          "returns, chains stay whole, one caller's error spares the others",
          "[store][group]")
{
  // LMDB without and with the leader's wait for more writers (OpenOptions::group_wait_us),
  // and PostgreSQL (-1: each call its own transaction, concurrent on the server).
  const int wait_us = GENERATE(0, 2000, -1);
  CAPTURE(wait_us);
  TempDir dir;
  std::optional<test::PgDatabase> pg;
  auto opened = open_concurrent(wait_us, dir, pg);
  auto& st = *opened;
  World w;
  std::vector<std::string> deliveries;
  std::vector<std::string> messages;
  for (int n = 0; n < 12; ++n) {
    auto nm = random_message(w, n);
    REQUIRE(st.create_message(nm).ok());
    messages.push_back(nm.message.id());
    for (const auto& d : nm.deliveries) {
      deliveries.push_back(d.id());
    }
  }
  std::atomic<int> stored{0}, unknown{0}, dup_stored{0}, invisible{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const auto& d = deliveries[static_cast<std::size_t>(t * 7 + i) % deliveries.size()];
        if (i % 13 == 5) { // an unknown delivery: not_found for this caller only
          auto r = st.append_events({{"dnope", EventKind::read, k_t0, {}, {}}});
          unknown += (!r && r.error().code == store::Errc::not_found) ? 1 : 0;
          continue;
        }
        store::NewEvent e{d, i % 2 ? EventKind::read : EventKind::download, k_t0 + i, {}, {}};
        e.detail["thread"] = std::to_string(t);
        if (i == 7) {
          e.dedupe_key = "same-for-all"; // recorded once among the 16 threads
          e.detail["dup"] = "1";
        }
        auto r = st.append_events({e});
        if (!r) {
          continue;
        }
        for (const auto& ev : r.value()) {
          ++stored;
          dup_stored += ev.detail().count("dup") != 0 ? 1 : 0;
          // Committed before the answer: another transaction sees it at once.
          auto all = st.events_of_message(ev.message());
          bool seen = all && std::any_of(all->begin(), all->end(), [&](const auto& x) {
                        return x.seq() == ev.seq() && x.hash() == ev.hash();
                      });
          invisible += seen ? 0 : 1;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(unknown == 16 * 3);
  CHECK(dup_stored == 1);
  CHECK(invisible == 0);
  CHECK(stored == 16 * (40 - 3) - 15); // every call stored its event, but 15 duplicates
  int total = 0;
  for (const auto& mid : messages) {
    auto events = st.events_of_message(mid);
    REQUIRE(events.ok());
    CHECK(store::verify_chain(events.value()));
    for (std::size_t i = 0; i < events->size(); ++i) {
      CHECK((*events)[i].seq() == i + 1);
    }
    total += static_cast<int>(events->size());
  }
  CHECK(total == stored.load());
}

TEST_CASE("concurrent create_message calls share commits with appends: each is durable and "
          "whole when it returns, a conflicting one fails alone",
          "[store][group]")
{
  // LMDB without and with the leader's wait for more writers (OpenOptions::group_wait_us),
  // and PostgreSQL (-1: each call its own transaction, concurrent on the server).
  const int wait_us = GENERATE(0, 2000, -1);
  CAPTURE(wait_us);
  TempDir dir;
  std::optional<test::PgDatabase> pg;
  auto opened = open_concurrent(wait_us, dir, pg);
  auto& st = *opened;
  World w;
  std::vector<store::NewMessage> all;
  for (int n = 0; n < 8 * 25; ++n) {
    all.push_back(random_message(w, n));
    // A large body (stored in overflow pages) on some: events do not read it back.
    if (n % 5 == 0) {
      all.back().message.set_text_body(std::string(150 * 1024, 'x') + " fin");
    }
  }
  std::atomic<int> created{0}, conflicts{0}, invisible{0}, events{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const auto& nm = all[static_cast<std::size_t>(t * 25 + i)];
        if (i == 3) {
          // A new message whose second delivery exists already (this thread's first): it
          // fails alone, and its message and first delivery are not recorded either.
          store::NewMessage bad = all[static_cast<std::size_t>(t * 25 + 1)];
          bad.message.set_id(fmt::format("mbad{}", t));
          bad.deliveries.resize(1);
          bad.deliveries[0].set_id(fmt::format("dbad{}", t));
          bad.deliveries.push_back(all[static_cast<std::size_t>(t * 25)].deliveries.front());
          auto r = st.create_message(bad);
          conflicts +=
              (!r && r.error().code == store::Errc::conflict && !st.get_message(bad.message.id()) &&
               !st.get_delivery(bad.deliveries[0].id()))
                  ? 1
                  : 0;
        }
        auto r = st.create_message(nm);
        if (!r) {
          continue;
        }
        ++created;
        // Durable and visible to another transaction once it returns.
        auto d = st.get_delivery(nm.deliveries.front().id());
        auto m = st.get_message(nm.message.id());
        invisible += d && m && m->text_body() == nm.message.text_body() ? 0 : 1;
        for (const auto& dl : nm.deliveries) {
          auto e = st.append_events({{dl.id(), EventKind::sent, k_t0, {}, {}},
                                     {dl.id(), EventKind::delivered, k_t0 + 1, {}, {}}});
          events += e ? static_cast<int>(e->size()) : 0;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(created == 8 * 25);
  CHECK(conflicts == 8);
  CHECK(invisible == 0);
  int total = 0;
  for (const auto& nm : all) {
    auto m = st.get_message(nm.message.id());
    REQUIRE(m.ok());
    auto evs = st.events_of_message(nm.message.id());
    REQUIRE(evs.ok());
    CHECK(store::verify_chain(evs.value()));
    for (std::size_t i = 0; i < evs->size(); ++i) {
      CHECK((*evs)[i].seq() == i + 1);
    }
    total += static_cast<int>(evs->size());
    for (const auto& dl : nm.deliveries) {
      auto d = st.get_delivery(dl.id());
      REQUIRE(d.ok());
      CHECK(d->status() == static_cast<std::uint32_t>(Status::delivered));
    }
  }
  CHECK(total == events.load());
}
