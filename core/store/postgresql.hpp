// The shared store: PgStore, the Store interface over a PostgreSQL database (libpq), for
// several hosts (two MTAs, a link host in a DMZ, an administrator's workstation) on one
// database. Same semantics and errors as the LMDB store (store.hpp), plus
// Errc::unavailable when the server cannot be reached: every call then fails without
// writing anything, and the next call after the server is back reconnects by itself.
//
// The schema is versioned (one row in pli_schema): open_postgresql refuses a database whose
// schema is older or newer than this binary (Errc::invalid, with the fix in the message);
// only migrate_schema (`pli store migrate-schema`, run with the owner role) creates or
// upgrades it. The internals, roles and rights are in doc/storage.md.
#pragma once

#include "core/store/store.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pli::store {

struct PgOptions
{
  // A libpq connection URI (postgresql://user@host/db?sslmode=verify-full) or key=value
  // conninfo. Never logged as is: see redact_url.
  std::string url;
  // The password file (libpq's passfile); empty: libpq's default (PGPASSFILE, ~/.pgpass).
  std::string passfile;
  std::size_t pool = 8;                 // connections at most, opened when first needed
  std::uint32_t connect_timeout_s = 5;  // per connection attempt
  std::string application_name = "pli"; // shown in pg_stat_activity
};

// The schema version this binary reads and writes.
int schema_version();

// Connects once (Errc::unavailable when the server cannot be reached, Errc::invalid for a
// malformed URL) and checks the schema version (Errc::invalid when absent, older or newer).
Result<std::unique_ptr<Store>> open_postgresql(const PgOptions& options);

// The schema version found in the database (0 when none was created).
// Errors: unavailable, invalid, io.
Result<int> schema_version_found(const PgOptions& options);

// Creates the schema, or upgrades it to schema_version(), in one transaction; grants the
// roles pli_milter, pli_linkd and pli_admin that exist their rights. Returns the version
// found before. Errors: invalid (a newer schema than this binary), unavailable, io.
Result<int> migrate_schema(const PgOptions& options);

// What the connected role lacks for a program's work ("milter", "linkd", "admin"): one
// line per missing right, empty when it has them all. For `pli doctor`.
Result<std::vector<std::string>> missing_rights(const PgOptions& options,
                                                const std::string& program);

// The URL without its password (postgresql://user:***@host/db), for logs and messages.
std::string redact_url(const std::string& url);

} // namespace pli::store
