// PgStore's schema: the tables and indexes (version 1), created or upgraded by
// migrate_schema in one transaction, the trigger that keeps events append-only, the rights
// of the roles pli_milter, pli_linkd and pli_admin, and the checks of open_postgresql and
// missing_rights (postgresql.hpp; doc/storage.md describes them).
#include "core/store/pg_store_impl.hpp"
#include "core/store/postgresql.hpp"
#include "core/util/crypto.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <regex>

namespace pli::store {

namespace {

constexpr int k_version = 1;

// Version 1. Text keys compare byte by byte (COLLATE "C"), as LMDB's keys do: pages are
// ordered by send time, newest first, then by delivery id.
constexpr const char* k_schema_v1 = R"sql(
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE pli_schema (version integer NOT NULL);
CREATE TABLE messages (
  id text COLLATE "C" PRIMARY KEY,
  sent_at bigint NOT NULL,
  blobs text[] NOT NULL,
  record bytea NOT NULL);
CREATE INDEX messages_blobs ON messages USING gin (blobs);
CREATE TABLE deliveries (
  id text COLLATE "C" PRIMARY KEY,
  message text COLLATE "C" NOT NULL,
  sent_at bigint NOT NULL,
  status smallint NOT NULL,
  type smallint NOT NULL,
  consultation text COLLATE "C" NOT NULL,
  recipient text NOT NULL,
  sender text NOT NULL,
  from_header text NOT NULL,
  words tsvector NOT NULL,
  record bytea NOT NULL);
CREATE INDEX deliveries_message ON deliveries (message);
CREATE INDEX deliveries_sent ON deliveries (sent_at DESC, id);
CREATE INDEX deliveries_status ON deliveries (status, sent_at DESC, id);
CREATE INDEX deliveries_type ON deliveries (type, sent_at DESC, id);
CREATE INDEX deliveries_consultation ON deliveries (consultation, sent_at DESC, id)
  WHERE consultation <> '';
CREATE INDEX deliveries_sender_exact ON deliveries (sender, sent_at DESC, id);
CREATE INDEX deliveries_words ON deliveries USING gin (words);
CREATE INDEX deliveries_recipient ON deliveries USING gin (recipient gin_trgm_ops);
CREATE INDEX deliveries_sender ON deliveries USING gin (sender gin_trgm_ops);
CREATE INDEX deliveries_from ON deliveries USING gin (from_header gin_trgm_ops);
CREATE TABLE events (
  message text COLLATE "C" NOT NULL,
  seq integer NOT NULL,
  record bytea NOT NULL,
  PRIMARY KEY (message, seq));
CREATE TABLE chain_heads (
  message text COLLATE "C" PRIMARY KEY,
  seq integer NOT NULL,
  hash text NOT NULL);
CREATE TABLE tokens (
  hash text COLLATE "C" PRIMARY KEY,
  delivery text COLLATE "C" NOT NULL,
  record bytea NOT NULL);
CREATE INDEX tokens_delivery ON tokens (delivery);
CREATE TABLE blobs (
  sha256 text COLLATE "C" PRIMARY KEY,
  bytes bytea NOT NULL);
CREATE TABLE consultations (
  reference text COLLATE "C" PRIMARY KEY,
  record bytea NOT NULL);
CREATE TABLE replies (
  id text COLLATE "C" PRIMARY KEY,
  delivery text COLLATE "C" NOT NULL,
  message text COLLATE "C" NOT NULL,
  blobs text[] NOT NULL,
  record bytea NOT NULL);
CREATE INDEX replies_message ON replies (message);
CREATE INDEX replies_blobs ON replies USING gin (blobs);
CREATE TABLE msgids (
  message_id text COLLATE "C" PRIMARY KEY,
  message text COLLATE "C" NOT NULL);
CREATE TABLE idempotency (
  key text COLLATE "C" PRIMARY KEY,
  delivery text COLLATE "C" NOT NULL);
CREATE INDEX idempotency_delivery ON idempotency (delivery);
CREATE TABLE credentials (
  key text COLLATE "C" PRIMARY KEY,
  expires_at bigint NOT NULL,
  record bytea NOT NULL);
CREATE INDEX credentials_expiry ON credentials (expires_at);
CREATE UNLOGGED TABLE rate_windows (
  key text COLLATE "C" NOT NULL,
  window_start bigint NOT NULL,
  window_end bigint NOT NULL,
  count bigint NOT NULL,
  PRIMARY KEY (key, window_start));
CREATE INDEX rate_windows_end ON rate_windows (window_end);
CREATE TABLE jobs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue text COLLATE "C" NOT NULL,
  kind text NOT NULL,
  payload bytea NOT NULL,
  created_at bigint NOT NULL,
  due_at bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0);
CREATE INDEX jobs_due ON jobs (queue, due_at);
CREATE FUNCTION pli_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('pli.purge', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'events are append-only: % refused (only pli purge deletes them)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION pli_events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION pli_events_append_only();
INSERT INTO pli_schema (version) VALUES (1);
)sql";

// Version 1, the deliveries' counts (`pli list`'s exact totals without a scan): per UTC day
// of sending, status and type, the number of deliveries, kept by triggers in the
// transaction that inserts, changes or deletes a delivery. Split in 8 shards by server
// process, so that concurrent writers of one day do not queue on one row; a total is the
// sum of the shards (pg_query.cpp).
constexpr const char* k_schema_v1_counts = R"sql(
CREATE TABLE delivery_counts (
  day bigint NOT NULL,
  status smallint NOT NULL,
  type smallint NOT NULL,
  shard smallint NOT NULL,
  n bigint NOT NULL,
  PRIMARY KEY (day, status, type, shard));
CREATE FUNCTION pli_delivery_day(sent_at bigint) RETURNS bigint LANGUAGE sql IMMUTABLE
  AS $$ SELECT floor(sent_at::numeric / 86400000000)::bigint $$;
CREATE FUNCTION pli_count_delivery(sent_at bigint, status smallint, type smallint, delta bigint)
  RETURNS void LANGUAGE sql AS $$
  INSERT INTO delivery_counts (day, status, type, shard, n)
  VALUES (pli_delivery_day(sent_at), status, type, pg_backend_pid() % 8, delta)
  ON CONFLICT (day, status, type, shard) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n $$;
CREATE FUNCTION pli_deliveries_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM pli_count_delivery(NEW.sent_at, NEW.status, NEW.type, 1);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pli_count_delivery(OLD.sent_at, OLD.status, OLD.type, -1);
  ELSIF (OLD.sent_at, OLD.status, OLD.type) IS DISTINCT FROM (NEW.sent_at, NEW.status, NEW.type)
  THEN
    PERFORM pli_count_delivery(OLD.sent_at, OLD.status, OLD.type, -1);
    PERFORM pli_count_delivery(NEW.sent_at, NEW.status, NEW.type, 1);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER deliveries_count AFTER INSERT OR UPDATE OR DELETE ON deliveries
  FOR EACH ROW EXECUTE FUNCTION pli_deliveries_count();
CREATE FUNCTION pli_deliveries_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM delivery_counts;
  RETURN NULL;
END $$;
CREATE TRIGGER deliveries_count_truncate AFTER TRUNCATE ON deliveries
  FOR EACH STATEMENT EXECUTE FUNCTION pli_deliveries_truncated();
)sql";

constexpr const char* k_tables[] = {
    "pli_schema",  "messages",    "deliveries",    "events",          "chain_heads",
    "tokens",      "blobs",       "consultations", "replies",         "msgids",
    "idempotency", "credentials", "rate_windows",  "delivery_counts", "jobs"};

// What each program does to each table, beyond reading them all.
struct Right
{
  const char* table;
  const char* privileges; // comma-separated
};
constexpr Right k_milter[] = {
    {"messages", "INSERT"},
    {"deliveries", "INSERT,UPDATE"},
    {"tokens", "INSERT"},
    {"blobs", "INSERT"},
    {"events", "INSERT"},
    {"chain_heads", "INSERT,UPDATE"},
    {"msgids", "INSERT,UPDATE"},
    {"idempotency", "INSERT,UPDATE"},
    {"delivery_counts", "INSERT,UPDATE"}, // the deliveries' triggers
    {"jobs", "INSERT,UPDATE,DELETE"},
};
constexpr Right k_linkd[] = {
    {"deliveries", "UPDATE"},
    {"events", "INSERT"},
    {"chain_heads", "INSERT,UPDATE"},
    {"replies", "INSERT"},
    {"tokens", "INSERT"},
    {"blobs", "INSERT"},
    {"idempotency", "INSERT"},
    {"credentials", "INSERT,DELETE"},
    {"rate_windows", "INSERT,UPDATE,DELETE"},
    {"delivery_counts", "INSERT,UPDATE"}, // the deliveries' triggers
    {"jobs", "INSERT,UPDATE,DELETE"},
};

std::vector<std::string> split(const std::string& s)
{
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

// What `program` needs: table -> privileges (SELECT on every table; admin: all of them).
std::vector<std::pair<std::string, std::vector<std::string>>> needs(const std::string& program)
{
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const char* t : k_tables) {
    std::vector<std::string> privs = {"SELECT"};
    if (program == "admin") {
      privs = {"SELECT", "INSERT", "UPDATE", "DELETE"};
    } else {
      const auto* begin = program == "milter" ? std::begin(k_milter) : std::begin(k_linkd);
      const auto* end = program == "milter" ? std::end(k_milter) : std::end(k_linkd);
      for (const auto* r = begin; r != end; ++r) {
        if (std::string_view(r->table) == t) {
          for (auto& p : split(r->privileges)) {
            privs.push_back(p);
          }
        }
      }
    }
    out.emplace_back(t, std::move(privs));
  }
  return out;
}

Result<int> found_version(pq::Conn& conn)
{
  auto exists = conn.exec("SELECT to_regclass('pli_schema') IS NOT NULL", "schema version");
  if (!exists) {
    return exists.error();
  }
  if (exists->bytes(0, 0) != std::string_view("\1", 1)) {
    return 0;
  }
  auto v = conn.exec("SELECT max(version) FROM pli_schema", "schema version");
  if (!v) {
    return v.error();
  }
  return static_cast<int>(v->integer(0, 0));
}

// GRANTs for the roles that exist (none is created here).
util::Status grant_roles(pq::Conn& conn)
{
  for (const std::string program : {"milter", "linkd", "admin"}) {
    const std::string role = "pli_" + program;
    auto exists = conn.exec("SELECT count(*) FROM pg_roles WHERE rolname = $1",
                            pq::Params{}.text(role), "roles");
    if (!exists) {
      return exists.error();
    }
    if (exists->integer(0, 0) == 0) {
      continue;
    }
    std::string sql;
    for (const auto& [table, privs] : needs(program)) {
      std::string list;
      for (const auto& p : privs) {
        list += (list.empty() ? "" : ", ") + p;
      }
      sql += fmt::format("REVOKE ALL ON {} FROM {}; GRANT {} ON {} TO {};\n", table, role, list,
                         table, role);
    }
    if (auto r = conn.simple(sql, "grants for " + role); !r) {
      return r.error();
    }
  }
  return util::ok_status();
}

} // namespace

int schema_version()
{
  return k_version;
}

std::string redact_url(const std::string& url)
{
  // URI form: scheme://user:password@host... ; key=value form: password=...
  static const std::regex uri(R"(^([a-z]+://[^:/@?#]*):[^@/?#]*@)", std::regex::icase);
  static const std::regex keyword(R"(password\s*=\s*('([^'\\]|\\.)*'|\S*))", std::regex::icase);
  std::string out = std::regex_replace(url, uri, "$1:***@");
  out = std::regex_replace(out, keyword, "password=***");
  // A password given as a query parameter of the URI.
  static const std::regex query(R"(([?&]password=)[^&]*)", std::regex::icase);
  return std::regex_replace(out, query, "$1***");
}

Result<int> schema_version_found(const PgOptions& options)
{
  auto conn = pq::connect(options);
  if (!conn) {
    return conn.error();
  }
  return found_version(*conn.value());
}

Result<int> migrate_schema(const PgOptions& options)
{
  auto conn = pq::connect(options);
  if (!conn) {
    return conn.error();
  }
  pq::Conn& c = *conn.value();
  pq::Tx tx(c);
  if (auto st = tx.begin(); !st) {
    return st.error();
  }
  // Two migrations at once wait for each other.
  if (auto r = c.simple("SELECT pg_advisory_xact_lock(7306985)", "schema lock"); !r) {
    return r.error();
  }
  auto before = found_version(c);
  if (!before) {
    return before.error();
  }
  if (before.value() > k_version) {
    return util::Error{Errc::invalid,
                       fmt::format("the database's schema is version {}, newer than this pli's "
                                   "({}): upgrade pli before `pli store migrate-schema`",
                                   before.value(), k_version)};
  }
  if (before.value() == 0) {
    if (auto r = c.simple(k_schema_v1, "creating the schema"); !r) {
      return r.error();
    }
    if (auto r = c.simple(k_schema_v1_counts, "creating the schema (counts)"); !r) {
      return r.error();
    }
  }
  // Later versions: their upgrades from the version before, in order, here.
  if (auto st = grant_roles(c); !st) {
    return st.error();
  }
  if (auto st = tx.commit(); !st) {
    return st.error();
  }
  return before.value();
}

Result<std::vector<std::string>> missing_rights(const PgOptions& options,
                                                const std::string& program)
{
  if (program != "milter" && program != "linkd" && program != "admin") {
    return util::Error{Errc::invalid,
                       fmt::format("no program '{}' (milter, linkd, admin)", program)};
  }
  auto conn = pq::connect(options);
  if (!conn) {
    return conn.error();
  }
  std::vector<std::string> missing;
  for (const auto& [table, privs] : needs(program)) {
    for (const auto& p : privs) {
      auto r =
          conn.value()->exec("SELECT to_regclass($1) IS NOT NULL AND has_table_privilege($1, $2)",
                             pq::Params{}.text(table).text(p), "rights");
      if (!r) {
        return r.error();
      }
      if (r->bytes(0, 0) != std::string_view("\1", 1)) {
        missing.push_back(fmt::format("{} on table {}", p, table));
      }
    }
  }
  return missing;
}

Result<std::unique_ptr<Store>> open_postgresql(const PgOptions& options)
{
  util::crypto_init();
  quiet_utf8_logs();
  auto store = std::make_unique<detail::PgStore>(options);
  auto conn = store->lease();
  if (!conn) {
    return conn.error();
  }
  auto v = found_version(**conn);
  if (!v) {
    return v.error();
  }
  if (v.value() != k_version) {
    const std::string found =
        v.value() == 0 ? "has no pli schema" : fmt::format("has schema version {}", v.value());
    const std::string fix = v.value() > k_version
                                ? "upgrade pli to a version that reads it"
                                : "run `pli store migrate-schema` with the owner role";
    return util::Error{Errc::invalid, fmt::format("the database {} {} (this pli reads version "
                                                  "{}): {}",
                                                  redact_url(options.url), found, k_version, fix)};
  }
  return std::unique_ptr<Store>(std::move(store));
}

} // namespace pli::store
