// The buyers' area's credentials in LMDB: one database, `credentials`, mapping
// KIND + SHA-256 hex of a random secret -> pb::Credential (login links, sessions).
// Used by LmdbStore (lmdb_store.cpp), which owns the environment; each function is one
// transaction of its own, synced before it returns.
#pragma once

#include "core/store/store.hpp"

#include <lmdb.h>

namespace pli::store::credentials {

// Opens (creating unless read-only) the database. Returns an LMDB code (0 ok); a
// read-only open of a store that never had it gives MDB_NOTFOUND.
int open(MDB_txn* txn, bool read_only, MDB_dbi* dbi);

// Errors: conflict, full, io. Removes expired records (expires_at <= now) first.
Result<util::Unit> put(MDB_env* env, MDB_dbi dbi, const std::string& key, pb::Credential c,
                       util::Micros now);
// Errors: not_found, invalid, io.
Result<pb::Credential> get(MDB_env* env, MDB_dbi dbi, const std::string& key);
// Reads and deletes. Errors: not_found, invalid, io.
Result<pb::Credential> take(MDB_env* env, MDB_dbi dbi, const std::string& key);

} // namespace pli::store::credentials
