// LmdbStore: the environment, opening (with the databases and the counts built for older
// stores) and the lookups of single records. See lmdb_store_impl.hpp for the layout.
#include "core/store/evidence.hpp"
#include "core/store/lenient.hpp"
#include "core/store/lmdb_store_impl.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <fstream>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

namespace pli::store {

namespace detail {

util::Status LmdbStore::open_dbs(bool read_only)
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
  // The outbox's jobs (added later): a read-only open of an older store has none.
  if (int rc = mdb_dbi_open(txn.get(), "jobs", read_only ? 0 : MDB_CREATE, &m_jobs);
      rc != 0 && !(read_only && rc == MDB_NOTFOUND)) {
    return lmdb_error(rc, "opening database 'jobs'");
  }
  for (const auto& [name, slot] : dbs) {
    if (int rc = mdb_dbi_open(txn.get(), name, read_only ? 0 : MDB_CREATE, slot); rc != 0) {
      return lmdb_error(rc, fmt::format("opening database '{}'", name));
    }
  }
  // Per-day counts and the address index (added after the first stores were made): built
  // once from the records and the indexes. A read-only open of an older store works without
  // them (totals by scan, address filters on the records).
  const unsigned int create = read_only ? 0 : MDB_CREATE;
  int crc = mdb_dbi_open(txn.get(), "counts", create, &m_counts);
  if (crc != 0 && !(read_only && crc == MDB_NOTFOUND)) {
    return lmdb_error(crc, "opening database 'counts'");
  }
  int arc = mdb_dbi_open(txn.get(), "idx_addr", create, &m_idx_addr);
  arc = arc != 0 ? arc : mdb_dbi_open(txn.get(), "addrs", create, &m_addrs);
  if (arc != 0 && !(read_only && arc == MDB_NOTFOUND)) {
    return lmdb_error(arc, "opening database 'addrs'");
  }
  if (crc == 0) {
    auto marked = [&](std::string_view marker) {
      MDB_val k = val(marker);
      MDB_val v;
      return mdb_get(txn.get(), m_counts, &k, &v);
    };
    int rc = marked(k_counts_built3);
    if (rc == MDB_NOTFOUND && !read_only) {
      if (rc = rebuild_indexes(txn); rc != 0) {
        return lmdb_error(rc, "building the list counts and the address index");
      }
      rc = 0;
    }
    m_have_v3 = rc == 0 && arc == 0;
    m_have_v2 = m_have_v3 || (marked(k_counts_built2) == 0 && arc == 0);
    m_have_counts = m_have_v2 || marked(k_counts_built) == 0;
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

int LmdbStore::rebuild_indexes(lmdb::Txn& txn)
{
  // Whatever an earlier version left is rebuilt from scratch.
  for (MDB_dbi dbi : {m_counts, m_idx_addr, m_addrs}) {
    if (int rc = mdb_drop(txn.get(), dbi, 0); rc != 0) {
      return rc;
    }
  }
  std::map<std::string, std::int64_t> counts;
  // s, S, T, C from their indexes; W from the word index.
  const std::pair<MDB_dbi, char> indexes[] = {{m_idx_sent, 's'},
                                              {m_idx_status, 'S'},
                                              {m_idx_type, 'T'},
                                              {m_idx_consult, 'C'},
                                              {m_idx_word, 'W'}};
  for (const auto& [dbi, letter] : indexes) {
    const char l = letter;
    const int rc = lmdb::for_each_entry(txn.get(), dbi,
                                        [&](MDB_cursor*, std::string_view key, std::string_view) {
                                          std::size_t plen = 1;
                                          if (l == 's') {
                                            plen = 0;
                                          } else if (l == 'C' || l == 'W') {
                                            auto nul = key.find('\0');
                                            if (nul == std::string_view::npos) {
                                              return 0;
                                            }
                                            plen = nul + 1;
                                          }
                                          if (key.size() < plen + 8) {
                                            return 0;
                                          }
                                          ++counts[l + std::string(key.substr(0, plen)) +
                                                   day_of(from_inv_time(key.substr(plen, 8)))];
                                          return 0;
                                        });
    if (rc != 0) {
      return rc;
    }
  }
  // X (status + type), W + type, A and the address index from the records.
  struct Cached
  {
    pb::Message message;
    std::vector<std::string> words;
  };
  std::unordered_map<std::string, Cached> messages;
  const int rc = lmdb::for_each_entry(
      txn.get(), m_deliveries, [&](MDB_cursor*, std::string_view, std::string_view value) {
        auto d = decode<pb::Delivery>(value, "delivery");
        if (!d) {
          return 0;
        }
        const Cached* cached = cached_message(txn, messages, d->message(), [](pb::Message m) {
          auto words = index_words(m.subject() + "\n" + m.text_body());
          return Cached{std::move(m), std::move(words)};
        });
        if (cached == nullptr) {
          return 0;
        }
        const pb::Message& m = cached->message;
        const std::string day = day_of(m.sent_at());
        const std::string type(1, static_cast<char>(m.type()));
        const std::string status(1, static_cast<char>(d->status()));
        ++counts["X" + status + type + day];
        for (const auto& w : cached->words) {
          ++counts["W" + w + std::string(1, '\0') + day + type];
        }
        ++counts["A" + addr_id('r', util::ascii_lower(d->recipient())) + day + status];
        ++counts["A" + pair_id(m.sender(), m.from_header()) + day + status];
        return index_addresses(txn.get(), m, d.value(), inv_time(m.sent_at()) + d->id(), 1);
      });
  if (rc != 0) {
    return rc;
  }
  for (const auto& [key, n] : counts) {
    MDB_val ck = val(key);
    MDB_val cv{8, const_cast<std::int64_t*>(&n)};
    if (int r = mdb_put(txn.get(), m_counts, &ck, &cv, 0); r != 0) {
      return r;
    }
  }
  for (auto marker : {k_counts_built, k_counts_built2, k_counts_built3}) {
    MDB_val mk = val(marker);
    MDB_val mv = val("1");
    if (int r = mdb_put(txn.get(), m_counts, &mk, &mv, 0); r != 0) {
      return r;
    }
  }
  return 0;
}

std::pair<void*, std::size_t> LmdbStore::find_map() const
{
  mdb_filehandle_t fd = -1;
  struct stat st
  {
  };
  if (mdb_env_get_fd(m_env.get(), &fd) != 0 || ::fstat(fd, &st) != 0) {
    return {nullptr, 0};
  }
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // start-end perms offset major:minor inode path
    unsigned long start = 0, end = 0, offset = 0, inode = 0;
    unsigned int major = 0, minor = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx %x:%x %lu", &start, &end, perms, &offset, &major,
                    &minor, &inode) == 7 &&
        offset == 0 && inode == st.st_ino && makedev(major, minor) == st.st_dev) {
      return {reinterpret_cast<void*>(start), end - start};
    }
  }
  return {nullptr, 0};
}

Result<pb::Message> LmdbStore::get_message(const std::string& id)
{
  return read_record<pb::Message>(m_messages, id, "message");
}

Result<pb::Delivery> LmdbStore::get_delivery(const std::string& id)
{
  return read_record<pb::Delivery>(m_deliveries, id, "delivery");
}

Result<pb::Token> LmdbStore::get_token(const std::string& hash)
{
  return read_record<pb::Token>(m_tokens, hash, "token");
}

Result<pb::Consultation> LmdbStore::get_consultation(const std::string& reference)
{
  return read_record<pb::Consultation>(m_consultations, reference, "consultation");
}

Result<std::string> LmdbStore::get_blob(const std::string& sha)
{
  return read_raw(m_blobs, sha, "blob");
}

Result<std::string> LmdbStore::find_by_message_id(const std::string& message_id)
{
  return read_raw(m_msgids, message_id, "Message-ID");
}

Result<std::string> LmdbStore::find_by_idempotency_key(const std::string& key)
{
  return read_raw(m_idem, key, "idempotency key");
}

Result<std::vector<pb::Event>> LmdbStore::events_of_message(const std::string& message_id)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  return events_in(txn, message_id);
}

Result<std::vector<pb::Event>> LmdbStore::events_in(lmdb::Txn& txn, const std::string& message_id)
{
  std::vector<pb::Event> out;
  std::string prefix = message_id + std::string(1, '\0');
  lmdb::Cursor cur(txn.get(), m_events);
  if (cur.rc() != 0) {
    return lmdb_error(cur.rc(), "cursor");
  }
  std::optional<util::Error> bad;
  int rc = lmdb::scan_prefix(cur.get(), prefix, prefix, [&](auto, std::string_view value) {
    auto e = decode<pb::Event>(value, "event");
    if (!e) {
      bad = e.error();
      return false;
    }
    out.push_back(std::move(e.value()));
    return true;
  });
  if (bad) {
    return *bad;
  }
  if (rc != 0) {
    return lmdb_error(rc, "events");
  }
  return out;
}

Result<pb::Delivery> LmdbStore::wait_for_sent(const std::string& id, std::chrono::milliseconds max)
{
  const auto deadline = std::chrono::steady_clock::now() + max;
  for (;;) {
    std::uint64_t seen = 0;
    {
      std::lock_guard lock(m_group_mu);
      seen = m_commits;
    }
    auto d = get_delivery(id);
    if (!d || d->sent_at() != 0) {
      return d;
    }
    std::unique_lock lock(m_group_mu);
    if (!m_commit_cv.wait_until(lock, deadline, [&] { return m_commits != seen; })) {
      return d; // not sent within `max`
    }
  }
}

Result<std::uint64_t> LmdbStore::count_failure(const std::string& key, util::Micros window_start,
                                               util::Micros window_end)
{
  constexpr std::size_t k_max_windows = 100000;
  std::lock_guard lock(m_failures_mu);
  if (m_failures.size() >= k_max_windows) {
    // Windows that ended go first (window_start is the caller's now, rounded down).
    for (auto i = m_failures.begin(); i != m_failures.end();) {
      i = i->second.first <= window_start ? m_failures.erase(i) : std::next(i);
    }
    if (m_failures.size() >= k_max_windows) {
      m_failures.erase(m_failures.begin());
    }
  }
  auto& w = m_failures[{key, window_start}];
  w.first = window_end;
  return ++w.second;
}

Result<pb::Reply> LmdbStore::get_reply(const std::string& id)
{
  return read_record<pb::Reply>(m_replies, id, "reply");
}

} // namespace detail

Result<std::unique_ptr<Store>> open_lmdb(const OpenOptions& options)
{
  util::crypto_init();
  quiet_utf8_logs();
  if (!options.read_only) {
    if (::mkdir(options.path.c_str(), 0750) != 0 && errno != EEXIST) {
      return util::Error{Errc::io, fmt::format("cannot create the store directory {}: {}",
                                               options.path, std::strerror(errno))};
    }
  }
  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) {
    return detail::lmdb_error(rc, "mdb_env_create");
  }
  lmdb::Env env(raw);
  mdb_env_set_maxdbs(raw, 32);
  mdb_env_set_maxreaders(raw, 512);
  mdb_env_set_mapsize(raw, static_cast<std::size_t>(options.map_size_mb) * 1024 * 1024);
  unsigned int flags = MDB_NOTLS | (options.read_only ? MDB_RDONLY : 0) |
                       (options.no_sync ? MDB_NOSYNC : 0) |
                       (options.write_mostly ? MDB_NORDAHEAD : 0);
  if (int rc = mdb_env_open(raw, options.path.c_str(), flags, 0660); rc != 0) {
    return util::Error{
        Errc::io, fmt::format("cannot open the store at {}: {}", options.path, mdb_strerror(rc))};
  }
  int dead = 0;
  mdb_reader_check(raw, &dead);
  auto store = std::make_unique<detail::LmdbStore>(std::move(env), options.write_mostly,
                                                   options.group_wait_us, options.reserve_percent);
  if (auto st = store->open_dbs(options.read_only); !st) {
    return st.error();
  }
  return std::unique_ptr<Store>(std::move(store));
}

} // namespace pli::store
