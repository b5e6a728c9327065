// A small RAII layer over libpq for PgStore: move-only owners of PGconn and PGresult,
// parameters (binary where it pays: bytea and integers), statements prepared once per
// connection, a pool of at most PgOptions::pool connections handed out per call, and a
// transaction guard that rolls back unless committed. Errors map to store::Errc: a server
// that cannot be reached or a lost connection is `unavailable` (the connection is dropped
// from the pool, and the next call opens a new one), a unique violation `conflict`, a full
// disk (SQLSTATE 53100) `full`, anything else `io`. Private to core/store (pg_*.cpp).
#pragma once

#include "core/store/postgresql.hpp"
#include "core/store/store.hpp"

#include <libpq-fe.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pli::store::pq {

struct ConnDeleter
{
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter
{
  void operator()(PGresult* r) const { PQclear(r); }
};

// Type OIDs of the parameters we send (pg_type.h is not installed by libpq-dev).
enum class Oid : ::Oid
{
  unknown = 0, // text format, typed by a cast in the statement (arrays)
  boolean = 16,
  bytea = 17,
  int8 = 20,
  int2 = 21,
  int4 = 23,
  text = 25,
};

// A statement's parameters, in order ($1, $2, ...). Every value is copied.
class Params
{
public:
  Params& text(std::string_view v) { return add(Oid::text, std::string(v), 1); }
  Params& bytes(std::string_view v) { return add(Oid::bytea, std::string(v), 1); }
  Params& i64(std::int64_t v)
  {
    return add(Oid::int8, big_endian(static_cast<std::uint64_t>(v), 8), 1);
  }
  Params& i32(std::int32_t v)
  {
    return add(Oid::int4, big_endian(static_cast<std::uint32_t>(v), 4), 1);
  }
  Params& i16(std::int16_t v)
  {
    return add(Oid::int2, big_endian(static_cast<std::uint16_t>(v), 2), 1);
  }
  // A text-format value typed by the statement's cast ($3::smallint[]).
  Params& literal(std::string v) { return add(Oid::unknown, std::move(v), 0); }

  std::size_t size() const { return m_values.size(); }
  const std::vector<::Oid>& types() const { return m_types; }
  std::vector<const char*> values() const
  {
    std::vector<const char*> out;
    for (const auto& v : m_values) {
      out.push_back(v.data());
    }
    return out;
  }
  std::vector<int> lengths() const
  {
    std::vector<int> out;
    for (const auto& v : m_values) {
      out.push_back(static_cast<int>(v.size()));
    }
    return out;
  }
  const std::vector<int>& formats() const { return m_formats; }

private:
  static std::string big_endian(std::uint64_t v, int n)
  {
    std::string out(static_cast<std::size_t>(n), '\0');
    for (int i = n - 1; i >= 0; --i) {
      out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
      v >>= 8;
    }
    return out;
  }
  Params& add(Oid type, std::string value, int format)
  {
    m_types.push_back(static_cast<::Oid>(type));
    m_values.push_back(std::move(value));
    m_formats.push_back(format);
    return *this;
  }
  std::vector<::Oid> m_types;
  std::vector<std::string> m_values;
  std::vector<int> m_formats;
};

// A text array literal ({"a","b"}) for Params::literal.
std::string text_array(const std::vector<std::string>& items);

// A statement's result, in binary format: bytes as sent, integers decoded.
class Rows
{
public:
  Rows() = default;
  explicit Rows(PGresult* r) : m_res(r) {}
  int size() const { return m_res ? PQntuples(m_res.get()) : 0; }
  bool null(int row, int col) const { return PQgetisnull(m_res.get(), row, col) != 0; }
  std::string_view bytes(int row, int col) const
  {
    return {PQgetvalue(m_res.get(), row, col),
            static_cast<std::size_t>(PQgetlength(m_res.get(), row, col))};
  }
  std::string text(int row, int col) const { return std::string(bytes(row, col)); }
  // An integer column of any width (int2, int4, int8); 0 when null.
  std::int64_t integer(int row, int col) const;
  // Rows changed by an INSERT, UPDATE or DELETE.
  std::size_t affected() const;

private:
  std::unique_ptr<PGresult, ResultDeleter> m_res;
};

// One connection, with the statements it has prepared and the statements deferred to its
// next round trip.
class Conn
{
public:
  explicit Conn(PGconn* c) : m_conn(c) {}
  PGconn* get() const { return m_conn.get(); }
  bool broken() const { return m_broken || PQstatus(m_conn.get()) != CONNECTION_OK; }
  void set_broken() { m_broken = true; }
  // True when the last statement failed with an error that a retry of the whole transaction
  // may cure (deadlock detected, serialization failure).
  bool retryable() const { return m_state == "40P01" || m_state == "40001"; }
  // Runs `sql` (prepared on first use on this connection) with `params`. `what` names the
  // operation in the error message.
  Result<Rows> exec(const std::string& sql, const Params& params, std::string_view what);
  Result<Rows> exec(const std::string& sql, std::string_view what)
  {
    return exec(sql, Params{}, what);
  }
  // Runs one or several statements without parameters, unprepared (schema ...), after the
  // deferred ones.
  Result<Rows> simple(const std::string& sql, std::string_view what);

  // Queues a statement for the next round trip: it is sent, with every other deferred
  // statement, before the next exec, simple or flush, in one pipeline (libpq's pipeline
  // mode: one round trip for all of them, run in order). Its error, if any, is the one that
  // exec, simple or flush returns (a unique violation named `conflict_name` when given:
  // "NAME already exists"); the statements after a failed one are not run. `out` (kept
  // alive by the caller until then) receives its rows.
  void defer(const std::string& sql, Params params, std::string_view what,
             std::string conflict_name = {}, Rows* out = nullptr);
  // Sends the deferred statements. Errors: the first failed statement's.
  util::Status flush();
  // Forgets the deferred statements (not sent).
  void discard_deferred() { m_deferred.clear(); }
  // True when the last failed round trip held a COMMIT and the connection was lost: the
  // transaction may have been committed.
  bool commit_unknown() const { return m_commit_unknown; }

private:
  struct Deferred
  {
    std::string sql;
    Params params;
    std::string what;
    std::string conflict_name;
    Rows* out;
  };
  util::Error error(PGresult* res, std::string_view what);
  // The name of `sql` prepared on this connection (prepared now on its first use).
  Result<std::string> prepared(const std::string& sql, const Params& params, std::string_view what);
  std::vector<Deferred> m_deferred;
  bool m_commit_unknown = false;
  std::unique_ptr<PGconn, ConnDeleter> m_conn;
  std::unordered_map<std::string, std::string> m_prepared; // sql -> statement name
  bool m_broken = false;
  std::string m_state; // the SQLSTATE of the last failed statement
};

// Opens a connection with `options` (synchronous_commit on, UTF-8).
// Errors: invalid (a malformed URL), unavailable.
Result<std::unique_ptr<Conn>> connect(const PgOptions& options);

class Pool;

// A connection taken from the pool for one call; given back when destroyed, or dropped
// when it broke.
class Lease
{
public:
  Lease(Pool* pool, std::unique_ptr<Conn> conn) : m_pool(pool), m_conn(std::move(conn)) {}
  Lease(Lease&& other) noexcept = default;
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  ~Lease();
  Conn& operator*() const { return *m_conn; }
  Conn* operator->() const { return m_conn.get(); }

private:
  Pool* m_pool;
  std::unique_ptr<Conn> m_conn;
};

class Pool
{
public:
  explicit Pool(PgOptions options) : m_options(std::move(options)) {}
  // A connection: an idle one, else a new one while fewer than `pool` are open, else the
  // first given back. Errors: those of connect.
  Result<Lease> acquire();
  const PgOptions& options() const { return m_options; }

private:
  friend class Lease;
  void give_back(std::unique_ptr<Conn> conn);
  PgOptions m_options;
  std::mutex m_mu;
  std::condition_variable m_cv;
  std::vector<std::unique_ptr<Conn>> m_idle;
  std::size_t m_open = 0;
};

// A transaction on a leased connection: BEGIN deferred to its first statement's round trip
// (begin()), COMMIT sent with the statements deferred before it, ROLLBACK when destroyed
// uncommitted.
class Tx
{
public:
  explicit Tx(Conn& conn) : m_conn(conn) {}
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  ~Tx();
  // `mode`: "" (read committed, read-write) or e.g. "ISOLATION LEVEL REPEATABLE READ READ ONLY".
  util::Status begin(std::string_view mode = {});
  [[nodiscard]] util::Status commit();
  Conn& conn() { return m_conn; }

private:
  Conn& m_conn;
  bool m_open = false;
};

} // namespace pli::store::pq
