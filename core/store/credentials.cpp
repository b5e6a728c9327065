#include "core/store/credentials.hpp"

#include "core/store/lenient.hpp"
#include "core/store/lmdb.hpp"

#include <fmt/format.h>

namespace pli::store::credentials {

namespace {

constexpr std::uint32_t k_version = 1;

util::Error error(int rc, std::string_view what)
{
  Errc code = rc == MDB_MAP_FULL ? Errc::full : rc == MDB_NOTFOUND ? Errc::not_found : Errc::io;
  return util::Error{code, fmt::format("{}: {}", what, mdb_strerror(rc))};
}

Result<pb::Credential> decode(const MDB_val& v)
{
  pb::Credential c;
  if (!parse_lenient({static_cast<const char*>(v.mv_data), v.mv_size}, c) ||
      c.version() != k_version) {
    return util::Error{Errc::invalid, "credential: undecodable record"};
  }
  return c;
}

} // namespace

int open(MDB_txn* txn, bool read_only, MDB_dbi* dbi)
{
  return mdb_dbi_open(txn, "credentials", read_only ? 0 : MDB_CREATE, dbi);
}

Result<util::Unit> put(MDB_env* env, MDB_dbi dbi, const std::string& key, pb::Credential c,
                       util::Micros now)
{
  if (auto bad = first_invalid_text(c); !bad.empty()) {
    return util::Error{Errc::invalid,
                       fmt::format("credential: its field {} is not valid UTF-8 (it would not "
                                   "read back), nothing was recorded",
                                   bad)};
  }
  lmdb::Txn txn;
  if (int rc = txn.begin(env, 0); rc != 0) {
    return error(rc, "credential");
  }
  {
    // Expired ones go: sessions and login links are few (one per active buyer).
    lmdb::Cursor cur(txn.get(), dbi);
    if (cur.rc() != 0) {
      return error(cur.rc(), "credential cursor");
    }
    MDB_val k;
    MDB_val v;
    for (int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      auto old = decode(v);
      if (!old || old->expires_at() <= now) {
        if (int d = mdb_cursor_del(cur.get(), 0); d != 0) {
          return error(d, "credential cleanup");
        }
      }
    }
  }
  c.set_version(k_version);
  const std::string bytes = c.SerializeAsString();
  MDB_val k = lmdb::val(key);
  MDB_val v = lmdb::val(bytes);
  if (int rc = mdb_put(txn.get(), dbi, &k, &v, MDB_NOOVERWRITE); rc != 0) {
    if (rc == MDB_KEYEXIST) {
      return util::Error{Errc::conflict, "credential exists"};
    }
    return error(rc, "credential");
  }
  if (int rc = txn.commit(); rc != 0) {
    return error(rc, "credential commit");
  }
  return util::Unit{};
}

Result<pb::Credential> get(MDB_env* env, MDB_dbi dbi, const std::string& key)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(env, MDB_RDONLY); rc != 0) {
    return error(rc, "credential");
  }
  MDB_val k = lmdb::val(key);
  MDB_val v;
  if (int rc = mdb_get(txn.get(), dbi, &k, &v); rc != 0) {
    return error(rc, "credential");
  }
  return decode(v);
}

Result<pb::Credential> take(MDB_env* env, MDB_dbi dbi, const std::string& key)
{
  lmdb::Txn txn;
  if (int rc = txn.begin(env, 0); rc != 0) {
    return error(rc, "credential");
  }
  MDB_val k = lmdb::val(key);
  MDB_val v;
  if (int rc = mdb_get(txn.get(), dbi, &k, &v); rc != 0) {
    return error(rc, "credential");
  }
  auto c = decode(v);
  if (int rc = mdb_del(txn.get(), dbi, &k, nullptr); rc != 0) {
    return error(rc, "credential delete");
  }
  if (int rc = txn.commit(); rc != 0) {
    return error(rc, "credential commit");
  }
  return c;
}

} // namespace pli::store::credentials
