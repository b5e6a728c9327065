// LmdbStore's outbox: the `jobs` database, job id (8 bytes big-endian) -> pb::Job. Jobs are
// few (the mails waiting to leave): a claim scans them in a read transaction and takes a
// write transaction only when one is due, then scans again in it (another process may have
// claimed it meanwhile).
#include "core/store/lmdb_store_impl.hpp"

#include <algorithm>

namespace pli::store::detail {

namespace {

std::string job_key(std::uint64_t id)
{
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[static_cast<std::size_t>(i)] = static_cast<char>(id & 0xff);
    id >>= 8;
  }
  return k;
}

std::uint64_t job_id(std::string_view k)
{
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < k.size(); ++i) {
    v = (v << 8) | static_cast<unsigned char>(k[i]);
  }
  return v;
}

bool parse_job(std::string_view bytes, pb::Job& out)
{
  return out.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) &&
         out.version() == k_schema_version;
}

ClaimedJob claimed(std::uint64_t id, const pb::Job& j)
{
  ClaimedJob c;
  c.id = id;
  c.job = Job{j.queue(), j.kind(), j.payload()};
  c.attempts = j.attempts();
  c.created_at = j.created_at();
  c.due_at = j.due_at();
  return c;
}

// The jobs of `queue` ("" = all) in `txn` passing `keep`, oldest due first, at most `max`.
int scan(MDB_txn* txn, MDB_dbi dbi, const std::string& queue, std::size_t max,
         const std::function<bool(const pb::Job&)>& keep,
         std::vector<std::pair<std::uint64_t, pb::Job>>& out)
{
  const int rc =
      lmdb::for_each_entry(txn, dbi, [&](MDB_cursor*, std::string_view k, std::string_view v) {
        pb::Job j;
        if (k.size() == 8 && parse_job(v, j) && (queue.empty() || j.queue() == queue) && keep(j)) {
          out.emplace_back(job_id(k), std::move(j));
        }
        return 0;
      });
  if (rc != 0 && rc != MDB_NOTFOUND) {
    return rc;
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second.due_at() < b.second.due_at();
  });
  if (out.size() > max) {
    out.resize(max);
  }
  return 0;
}

} // namespace

int LmdbStore::put_job(lmdb::Txn& txn, const Job& job, util::Micros now, std::uint64_t* id)
{
  std::uint64_t next = 1;
  {
    lmdb::Cursor cur(txn.get(), m_jobs);
    if (cur.rc() != 0) {
      return cur.rc();
    }
    MDB_val k;
    MDB_val v;
    int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_LAST);
    if (rc == 0) {
      next = job_id(view(k)) + 1;
    } else if (rc != MDB_NOTFOUND) {
      return rc;
    }
  }
  pb::Job j;
  j.set_version(k_schema_version);
  j.set_queue(job.queue);
  j.set_kind(job.kind);
  j.set_payload(job.payload);
  j.set_created_at(now);
  j.set_due_at(now);
  if (int rc = put_new(txn, m_jobs, job_key(next), j.SerializeAsString()); rc != 0) {
    return rc;
  }
  if (id != nullptr) {
    *id = next;
  }
  return 0;
}

Result<std::uint64_t> LmdbStore::enqueue(const Job& job, util::Micros now)
{
  if (auto st = room_for(4096); !st) {
    return st.error();
  }
  std::uint64_t id = 0;
  const WriteFn apply = [&](lmdb::Txn& txn) -> util::Status {
    if (int rc = put_job(txn, job, now, &id); rc != 0) {
      return lmdb_error(rc, "job");
    }
    return util::ok_status();
  };
  if (auto st = group_write(apply); !st) {
    return st.error();
  }
  return id;
}

Result<std::vector<ClaimedJob>> LmdbStore::claim_jobs(const std::string& queue, util::Micros now,
                                                      util::Micros lease, std::size_t max)
{
  std::vector<ClaimedJob> out;
  if (m_jobs == 0 || max == 0) {
    return out;
  }
  const auto due = [now](const pb::Job& j) { return j.due_at() <= now; };
  {
    lmdb::Txn read;
    if (int rc = read.begin(m_env.get(), MDB_RDONLY); rc != 0) {
      return lmdb_error(rc, "begin");
    }
    std::vector<std::pair<std::uint64_t, pb::Job>> found;
    if (int rc = scan(read.get(), m_jobs, queue, 1, due, found); rc != 0) {
      return lmdb_error(rc, "jobs");
    }
    if (found.empty()) {
      return out; // nothing due: no write transaction
    }
  }
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  std::vector<std::pair<std::uint64_t, pb::Job>> found;
  if (int rc = scan(txn.get(), m_jobs, queue, max, due, found); rc != 0) {
    return lmdb_error(rc, "jobs");
  }
  for (auto& [id, j] : found) {
    j.set_due_at(now + lease);
    j.set_attempts(j.attempts() + 1);
    if (int rc = put(txn, m_jobs, job_key(id), j.SerializeAsString()); rc != 0) {
      return lmdb_error(rc, "job");
    }
    out.push_back(claimed(id, j));
  }
  if (int rc = txn.commit(); rc != 0) {
    return lmdb_error(rc, "commit");
  }
  return out;
}

Result<util::Unit> LmdbStore::finish_job(std::uint64_t id)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  const std::string key = job_key(id);
  MDB_val k = val(key);
  if (int rc = mdb_del(txn.get(), m_jobs, &k, nullptr); rc != 0 && rc != MDB_NOTFOUND) {
    return lmdb_error(rc, "job");
  }
  if (int rc = txn.commit(); rc != 0) {
    return lmdb_error(rc, "commit");
  }
  return util::Unit{};
}

Result<util::Unit> LmdbStore::retry_job(std::uint64_t id, util::Micros due_at)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), 0); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  const std::string key = job_key(id);
  MDB_val k = val(key);
  MDB_val v;
  if (int rc = mdb_get(txn.get(), m_jobs, &k, &v); rc != 0) {
    return lmdb_error(rc, "job");
  }
  pb::Job j;
  if (!parse_job(view(v), j)) {
    return util::Error{Errc::invalid, "job: undecodable record"};
  }
  j.set_due_at(due_at);
  if (int rc = put(txn, m_jobs, key, j.SerializeAsString()); rc != 0) {
    return lmdb_error(rc, "job");
  }
  if (int rc = txn.commit(); rc != 0) {
    return lmdb_error(rc, "commit");
  }
  return util::Unit{};
}

Result<std::vector<ClaimedJob>> LmdbStore::list_jobs(const std::string& queue)
{
  std::vector<ClaimedJob> out;
  if (m_jobs == 0) {
    return out;
  }
  lmdb::Txn txn;
  if (int rc = txn.begin(m_env.get(), MDB_RDONLY); rc != 0) {
    return lmdb_error(rc, "begin");
  }
  std::vector<std::pair<std::uint64_t, pb::Job>> found;
  if (int rc = scan(
          txn.get(), m_jobs, queue, SIZE_MAX, [](const pb::Job&) { return true; }, found);
      rc != 0) {
    return lmdb_error(rc, "jobs");
  }
  for (const auto& [id, j] : found) {
    out.push_back(claimed(id, j));
  }
  return out;
}

} // namespace pli::store::detail
