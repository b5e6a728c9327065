// A private PostgreSQL 15 cluster for the unit tests: started the first time a test needs it
// (once per pli_unit process) in a temporary directory, on a unix socket in that directory
// (no TCP), with initdb and pg_ctl run as `nobody` when the tests run as root (initdb refuses
// root); stopped and removed when the process exits. Each test takes a fresh database.
#pragma once

#include "core/store/postgresql.hpp"
#include "core/store/store.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace pli::test {

class PgCluster
{
public:
  // The cluster, started when first called. Throws when it cannot be started.
  static PgCluster& get();

  // A new, empty database (no schema): options to connect to it as the superuser `pli`.
  store::PgOptions new_database();
  // The same database as another role (roles made with `sql`).
  static store::PgOptions as_role(const store::PgOptions& options, const std::string& role);
  // Runs SQL statements as the superuser in database `db` ("postgres" when empty); throws on
  // error.
  void sql(const std::string& sql, const std::string& db = "");
  // Runs SQL with `options` (a role of a test database): "" when it succeeded, else the
  // server's error message.
  static std::string try_sql(const std::string& sql, const store::PgOptions& options);

  // Stops the server (pg_ctl -m fast) and starts it again (the fault tests).
  void stop();
  void start();

  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

private:
  PgCluster();
  std::string conninfo(const std::string& db) const;
  std::filesystem::path m_dir;
  int m_owner_pid = 0;
  int m_next_db = 0;
  bool m_running = false;
};

// A fresh database with the schema (migrate_schema) and a PgStore opened on it.
struct PgDatabase
{
  PgDatabase();
  store::PgOptions options;
  std::unique_ptr<store::Store> open() const;
};

} // namespace pli::test
