// PgStore's outbox: the `jobs` table. A claim is one UPDATE of the due jobs it locks with
// FOR UPDATE SKIP LOCKED, so that two hosts claiming at once never take the same job, and a
// job's lease (due_at = now + lease) keeps it from every other host until it ends.
#include "core/store/pg_store_impl.hpp"
#include "core/util/text.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace pli::store::detail {

namespace {

std::vector<ClaimedJob> jobs_of(const pq::Rows& rows)
{
  // Columns: id, queue, kind, payload, attempts, created_at, due_at.
  std::vector<ClaimedJob> out;
  for (int i = 0; i < static_cast<int>(rows.size()); ++i) {
    ClaimedJob c;
    c.id = static_cast<std::uint64_t>(rows.integer(i, 0));
    c.job = Job{rows.text(i, 1), rows.text(i, 2), rows.text(i, 3)};
    c.attempts = static_cast<std::uint32_t>(rows.integer(i, 4));
    c.created_at = rows.integer(i, 5);
    c.due_at = rows.integer(i, 6);
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(), [](const ClaimedJob& a, const ClaimedJob& b) {
    return a.due_at != b.due_at ? a.due_at < b.due_at : a.id < b.id;
  });
  return out;
}

constexpr const char* k_columns = "id, queue, kind, payload, attempts, created_at, due_at";

} // namespace

Result<std::uint64_t> PgStore::insert_job(pq::Conn& conn, const Job& job, util::Micros now)
{
  auto r =
      conn.exec("INSERT INTO jobs (queue, kind, payload, created_at, due_at) "
                "VALUES ($1, $2, $3, $4, $4) RETURNING id",
                pq::Params{}.text(job.queue).text(job.kind).bytes(job.payload).i64(now), "job");
  if (!r) {
    return r.error();
  }
  return static_cast<std::uint64_t>(r->integer(0, 0));
}

Result<std::uint64_t> PgStore::enqueue(const Job& job, util::Micros now)
{
  if (!storable_key(job.queue) || !util::is_utf8(job.kind)) {
    return util::Error{Errc::invalid, "a job queue or kind that cannot be stored"};
  }
  std::uint64_t id = 0;
  auto st = in_transaction([&](pq::Conn& conn) -> util::Status {
    auto r = insert_job(conn, job, now);
    if (!r) {
      return r.error();
    }
    id = r.value();
    return util::ok_status();
  });
  if (!st) {
    return st.error();
  }
  return id;
}

Result<std::vector<ClaimedJob>> PgStore::claim_jobs(const std::string& queue, util::Micros now,
                                                    util::Micros lease, std::size_t max)
{
  if (!storable_key(queue) || max == 0) {
    return std::vector<ClaimedJob>{};
  }
  // One statement: its own transaction, and no row lock is taken when nothing is due.
  auto r =
      query(fmt::format("UPDATE jobs SET due_at = $2, attempts = attempts + 1 "
                        "WHERE id IN (SELECT id FROM jobs WHERE queue = $1 AND due_at <= $3 "
                        "ORDER BY due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) "
                        "RETURNING {}",
                        k_columns),
            pq::Params{}.text(queue).i64(now + lease).i64(now).i64(static_cast<std::int64_t>(max)),
            "jobs");
  if (!r) {
    return r.error();
  }
  return jobs_of(r.value());
}

Result<util::Unit> PgStore::finish_job(std::uint64_t id)
{
  auto r = query("DELETE FROM jobs WHERE id = $1", pq::Params{}.i64(static_cast<std::int64_t>(id)),
                 "job");
  if (!r) {
    return r.error();
  }
  return util::Unit{};
}

Result<util::Unit> PgStore::retry_job(std::uint64_t id, util::Micros due_at)
{
  auto r = query("UPDATE jobs SET due_at = $2 WHERE id = $1",
                 pq::Params{}.i64(static_cast<std::int64_t>(id)).i64(due_at), "job");
  if (!r) {
    return r.error();
  }
  if (r->affected() == 0) {
    return not_found(fmt::format("no job {}", id));
  }
  return util::Unit{};
}

Result<std::vector<ClaimedJob>> PgStore::list_jobs(const std::string& queue)
{
  auto r = queue.empty()
               ? query(fmt::format("SELECT {} FROM jobs", k_columns), pq::Params{}, "jobs")
               : query(fmt::format("SELECT {} FROM jobs WHERE queue = $1", k_columns),
                       pq::Params{}.text(queue), "jobs");
  if (!r) {
    return r.error();
  }
  return jobs_of(r.value());
}

} // namespace pli::store::detail
