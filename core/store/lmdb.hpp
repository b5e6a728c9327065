// RAII wrappers over the LMDB C API (move-only). A write transaction's destructor
// aborts; commit() is explicit.
#pragma once

#include "core/util/result.hpp"

#include <lmdb.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>

namespace pli::store::lmdb {

// LMDB forbids using an environment in a process other than the one that opened it (a
// forked child, e.g. after daemon()): get() asserts it, in release builds too.
class Env
{
public:
  Env() = default;
  explicit Env(MDB_env* env) : m_env(env), m_pid(::getpid()) {}
  Env(Env&& o) noexcept : m_env(std::exchange(o.m_env, nullptr)), m_pid(o.m_pid) {}
  Env& operator=(Env&& o) noexcept
  {
    std::swap(m_env, o.m_env);
    std::swap(m_pid, o.m_pid);
    return *this;
  }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  ~Env()
  {
    if (m_env != nullptr) {
      mdb_env_close(m_env);
    }
  }
  MDB_env* get() const
  {
    PLI_ASSERT(m_env == nullptr || ::getpid() == m_pid);
    return m_env;
  }

private:
  MDB_env* m_env = nullptr;
  pid_t m_pid = 0;
};

class Txn
{
public:
  Txn() = default;
  Txn(Txn&& o) noexcept : m_txn(std::exchange(o.m_txn, nullptr)) {}
  Txn& operator=(Txn&& o) noexcept
  {
    std::swap(m_txn, o.m_txn);
    return *this;
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn()
  {
    if (m_txn != nullptr) {
      mdb_txn_abort(m_txn);
    }
  }
  // Returns an LMDB error code (0 on success).
  int begin(MDB_env* env, unsigned int flags) { return mdb_txn_begin(env, nullptr, flags, &m_txn); }
  // A nested write transaction: its commit merges into `parent`, its abort undoes only it.
  int begin_nested(MDB_env* env, MDB_txn* parent) { return mdb_txn_begin(env, parent, 0, &m_txn); }
  [[nodiscard]] int commit() { return mdb_txn_commit(std::exchange(m_txn, nullptr)); }
  MDB_txn* get() const { return m_txn; }

private:
  MDB_txn* m_txn = nullptr;
};

class Cursor
{
public:
  Cursor(MDB_txn* txn, MDB_dbi dbi) { m_rc = mdb_cursor_open(txn, dbi, &m_cursor); }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor()
  {
    if (m_cursor != nullptr) {
      mdb_cursor_close(m_cursor);
    }
  }
  int rc() const { return m_rc; }
  MDB_cursor* get() const { return m_cursor; }

private:
  MDB_cursor* m_cursor = nullptr;
  int m_rc = 0;
};

inline MDB_val val(std::string_view s)
{
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view view(const MDB_val& v)
{
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// Visits every entry of `dbi` in key order, through a cursor of its own: `fn(cursor, key,
// value)` returns 0 to go on (it may delete the entry under the cursor), or an LMDB error
// code, which stops the walk and is returned. Returns 0 or an LMDB error code.
template <typename Fn> int for_each_entry(MDB_txn* txn, MDB_dbi dbi, Fn&& fn)
{
  Cursor cur(txn, dbi);
  if (cur.rc() != 0) {
    return cur.rc();
  }
  MDB_val k;
  MDB_val v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
  for (; rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
    if (int r = fn(cur.get(), view(k), view(v)); r != 0) {
      return r;
    }
  }
  return rc == MDB_NOTFOUND ? 0 : rc;
}

// Visits, in key order from `start`, the entries of `cursor`'s database whose keys begin
// with `prefix`, until `fn(key, value)` returns false. Returns 0 or an LMDB error code.
template <typename Fn>
int scan_prefix(MDB_cursor* cursor, std::string_view start, std::string_view prefix, Fn&& fn)
{
  MDB_val k = val(start);
  MDB_val v;
  int rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
  for (; rc == 0; rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    const std::string_view key = view(k);
    if (key.substr(0, prefix.size()) != prefix || !fn(key, view(v))) {
      return 0;
    }
  }
  return rc == MDB_NOTFOUND ? 0 : rc;
}

} // namespace pli::store::lmdb
