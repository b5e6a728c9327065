// The unit tests' private PostgreSQL cluster (pg_cluster.hpp).
#include "tests/unit/pg_cluster.hpp"

#include <libpq-fe.h>

#include <fcntl.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <vector>

namespace pli::test {

namespace {

const char* const k_bin = "/usr/lib/postgresql/15/bin/";

// Runs a PostgreSQL program (as `nobody` when we are root), its output in `log`; throws
// unless it exits 0.
void run(std::vector<std::string> argv, const std::filesystem::path& log)
{
  const std::string name = argv.front();
  if (::geteuid() == 0) {
    argv.insert(argv.begin(), {"runuser", "-u", "nobody", "--"});
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(name + " failed: see " + log.string());
  }
}

} // namespace

PgCluster& PgCluster::get()
{
  static PgCluster cluster;
  return cluster;
}

PgCluster::PgCluster() : m_owner_pid(::getpid())
{
  std::string t = (std::filesystem::temp_directory_path() / "pli-pg-XXXXXX").string();
  if (::mkdtemp(t.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  m_dir = t;
  if (::geteuid() == 0) {
    const passwd* nobody = ::getpwnam("nobody");
    if (nobody == nullptr || ::chown(m_dir.c_str(), nobody->pw_uid, nobody->pw_gid) != 0) {
      throw std::runtime_error("cannot give " + m_dir.string() + " to nobody");
    }
  }
  run({std::string(k_bin) + "initdb", "-D", (m_dir / "data").string(), "-U", "pli", "--auth=trust",
       "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"},
      m_dir / "initdb.log");
  start();
}

PgCluster::~PgCluster()
{
  if (::getpid() != m_owner_pid) {
    return; // a forked test child: the cluster is its parent's
  }
  try {
    if (m_running) {
      stop();
    }
  } catch (...) {
  }
  std::error_code ec;
  std::filesystem::remove_all(m_dir, ec);
}

void PgCluster::start()
{
  run({std::string(k_bin) + "pg_ctl", "-D", (m_dir / "data").string(), "-l",
       (m_dir / "server.log").string(), "-w", "-o",
       "-k " + m_dir.string() + " -c listen_addresses='' -c max_connections=200", "start"},
      m_dir / "pg_ctl.log");
  m_running = true;
}

void PgCluster::stop()
{
  run({std::string(k_bin) + "pg_ctl", "-D", (m_dir / "data").string(), "-m", "fast", "-w", "stop"},
      m_dir / "pg_ctl.log");
  m_running = false;
}

std::string PgCluster::conninfo(const std::string& db) const
{
  return "host=" + m_dir.string() + " user=pli dbname=" + (db.empty() ? "postgres" : db);
}

void PgCluster::sql(const std::string& sql, const std::string& db)
{
  PGconn* conn = PQconnectdb(conninfo(db).c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string why = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect to the test cluster: " + why);
  }
  PGresult* res = PQexec(conn, sql.c_str());
  const auto st = PQresultStatus(res);
  const std::string why = PQresultErrorMessage(res);
  PQclear(res);
  PQfinish(conn);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    throw std::runtime_error("test SQL failed: " + why);
  }
}

std::string PgCluster::try_sql(const std::string& sql, const store::PgOptions& options)
{
  PGconn* conn = PQconnectdb(options.url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn);
    PQfinish(conn);
    return why.empty() ? "cannot connect" : why;
  }
  PGresult* res = PQexec(conn, sql.c_str());
  const auto st = PQresultStatus(res);
  std::string why = PQresultErrorMessage(res);
  PQclear(res);
  PQfinish(conn);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return why.empty() ? "failed" : why;
  }
  return "";
}

store::PgOptions PgCluster::new_database()
{
  const std::string db = "t" + std::to_string(++m_next_db);
  sql("CREATE DATABASE " + db);
  store::PgOptions o;
  o.url = conninfo(db);
  o.pool = 4;
  return o;
}

store::PgOptions PgCluster::as_role(const store::PgOptions& options, const std::string& role)
{
  store::PgOptions o = options;
  o.url.replace(o.url.find("user=pli"), 8, "user=" + role);
  return o;
}

PgDatabase::PgDatabase() : options(PgCluster::get().new_database())
{
  auto v = store::migrate_schema(options);
  if (!v) {
    throw std::runtime_error("migrate_schema: " + v.error().message);
  }
}

std::unique_ptr<store::Store> PgDatabase::open() const
{
  auto s = store::open_postgresql(options);
  if (!s) {
    throw std::runtime_error("open_postgresql: " + s.error().message);
  }
  return std::move(s.value());
}

} // namespace pli::test
