// The libpq layer of PgStore (pq.hpp): connections, prepared statements, the pool and
// transactions, with libpq's errors mapped to store::Errc.
#include "core/store/pq.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include <poll.h>
#include <regex>

namespace pli::store::pq {

namespace {

// libpq's messages end with a newline; ours are one sentence.
std::string trimmed(const char* s)
{
  std::string out = s != nullptr ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

// `message` without the URL's password: libpq may quote the whole URL it could not parse.
std::string scrubbed(std::string message, const std::string& url)
{
  static const std::regex uri(R"(^[a-z]+://[^:/@?#]*:([^@/?#]*)@)", std::regex::icase);
  static const std::regex keyword(R"(password\s*=\s*'?([^'\s&]*))", std::regex::icase);
  std::vector<std::string> secrets;
  std::smatch m;
  if (std::regex_search(url, m, uri) && m[1].length() > 0) {
    secrets.push_back(m[1].str());
  }
  for (auto it = std::sregex_iterator(url.begin(), url.end(), keyword);
       it != std::sregex_iterator(); ++it) {
    if ((*it)[1].length() > 0) {
      secrets.push_back((*it)[1].str());
    }
  }
  for (const auto& s : secrets) {
    for (std::size_t at = message.find(s); at != std::string::npos; at = message.find(s, at)) {
      message.replace(at, s.size(), "***");
      at += 3;
    }
  }
  return message;
}

} // namespace

std::string text_array(const std::vector<std::string>& items)
{
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') {
        out += '\\';
      }
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::int64_t Rows::integer(int row, int col) const
{
  if (null(row, col)) {
    return 0;
  }
  const std::string_view b = bytes(row, col);
  std::uint64_t v = 0;
  for (char c : b) {
    v = (v << 8) | static_cast<unsigned char>(c);
  }
  // Sign-extend from the column's width.
  if (!b.empty() && b.size() < 8 && (static_cast<unsigned char>(b.front()) & 0x80) != 0) {
    v |= ~std::uint64_t{0} << (8 * b.size());
  }
  return static_cast<std::int64_t>(v);
}

std::size_t Rows::affected() const
{
  const char* n = m_res ? PQcmdTuples(m_res.get()) : "";
  return n != nullptr && *n != '\0' ? static_cast<std::size_t>(std::strtoull(n, nullptr, 10)) : 0;
}

util::Error Conn::error(PGresult* res, std::string_view what)
{
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  m_state = state != nullptr ? state : "";
  std::string message = res != nullptr ? trimmed(PQresultErrorMessage(res)) : "";
  if (message.empty()) {
    message = trimmed(PQerrorMessage(m_conn.get()));
  }
  Errc code = Errc::io;
  // Class 08: connection exception; 57P01-57P03: the server shuts down or is starting.
  if (PQstatus(m_conn.get()) != CONNECTION_OK || m_state.rfind("08", 0) == 0 ||
      m_state == "57P01" || m_state == "57P02" || m_state == "57P03") {
    code = Errc::unavailable;
    m_broken = true;
  } else if (m_state == "23505") {
    code = Errc::conflict;
  } else if (m_state == "53100") {
    code = Errc::full;
  }
  if (code == Errc::unavailable) {
    return util::Error{code, fmt::format("{}: the database is unavailable: {}", what, message)};
  }
  return util::Error{code, fmt::format("{}: {}", what, message)};
}

Result<std::string> Conn::prepared(const std::string& sql, const Params& params,
                                   std::string_view what)
{
  auto it = m_prepared.find(sql);
  if (it == m_prepared.end()) {
    const std::string name = "s" + std::to_string(m_prepared.size() + 1);
    PGresult* res = PQprepare(m_conn.get(), name.c_str(), sql.c_str(),
                              static_cast<int>(params.size()), params.types().data());
    if (res == nullptr || PQresultStatus(res) != PGRES_COMMAND_OK) {
      auto e = error(res, what);
      PQclear(res);
      return e;
    }
    PQclear(res);
    it = m_prepared.emplace(sql, name).first;
  }
  return it->second;
}

Result<Rows> Conn::exec(const std::string& sql, const Params& params, std::string_view what)
{
  if (!m_deferred.empty()) {
    Rows rows;
    defer(sql, params, what, {}, &rows);
    if (auto st = flush(); !st) {
      return st.error();
    }
    return rows;
  }
  m_state.clear();
  auto name = prepared(sql, params, what);
  if (!name) {
    return name.error();
  }
  const auto values = params.values();
  const auto lengths = params.lengths();
  PGresult* res = PQexecPrepared(m_conn.get(), name->c_str(), static_cast<int>(params.size()),
                                 values.data(), lengths.data(), params.formats().data(), 1);
  const auto st = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    auto e = error(res, what);
    PQclear(res);
    return e;
  }
  m_state.clear();
  return Rows(res);
}

void Conn::defer(const std::string& sql, Params params, std::string_view what,
                 std::string conflict_name, Rows* out)
{
  m_deferred.push_back(
      Deferred{sql, std::move(params), std::string(what), std::move(conflict_name), out});
}

util::Status Conn::flush()
{
  if (m_deferred.empty()) {
    return util::ok_status();
  }
  std::vector<Deferred> batch;
  batch.swap(m_deferred);
  m_state.clear();
  m_commit_unknown = false;
  if (batch.size() == 1) {
    // One statement: no pipeline needed.
    auto rows = exec(batch[0].sql, batch[0].params, batch[0].what);
    if (!rows) {
      if (rows.error().code == Errc::conflict && !batch[0].conflict_name.empty()) {
        return util::Error{Errc::conflict, batch[0].conflict_name + " already exists"};
      }
      m_commit_unknown = m_broken && batch[0].sql == "COMMIT";
      return rows.error();
    }
    if (batch[0].out != nullptr) {
      *batch[0].out = std::move(rows.value());
    }
    return util::ok_status();
  }
  std::vector<std::string> names;
  bool commits = false;
  for (const auto& d : batch) {
    auto name = prepared(d.sql, d.params, d.what);
    if (!name) {
      return name.error();
    }
    names.push_back(std::move(name.value()));
    commits |= d.sql == "COMMIT";
  }
  PGconn* c = m_conn.get();
  auto lost = [&](std::string_view what) {
    auto e = error(nullptr, what);
    m_broken = true; // the pipeline's state is unknown: the connection is not reused
    m_commit_unknown = commits;
    return util::Error{Errc::unavailable, e.message};
  };
  if (PQenterPipelineMode(c) != 1) {
    return lost(batch[0].what);
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& p = batch[i].params;
    const auto values = p.values();
    const auto lengths = p.lengths();
    if (PQsendQueryPrepared(c, names[i].c_str(), static_cast<int>(p.size()), values.data(),
                            lengths.data(), p.formats().data(), 1) != 1) {
      return lost(batch[i].what);
    }
  }
  if (PQpipelineSync(c) != 1) {
    return lost(batch[0].what);
  }
  std::optional<util::Error> first;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    PGresult* res = PQgetResult(c);
    if (res == nullptr) {
      return first && first->code == Errc::unavailable ? *first : lost(batch[i].what);
    }
    const auto st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      if (batch[i].out != nullptr) {
        *batch[i].out = Rows(res);
      } else {
        PQclear(res);
      }
    } else if (st == PGRES_PIPELINE_ABORTED) {
      PQclear(res);
    } else {
      if (!first) {
        first = error(res, batch[i].what);
        if (first->code == Errc::conflict && !batch[i].conflict_name.empty()) {
          first = util::Error{Errc::conflict, batch[i].conflict_name + " already exists"};
        }
      }
      PQclear(res);
      if (m_broken) {
        m_commit_unknown = commits;
        return *first;
      }
    }
    // The end of this statement's results.
    while ((res = PQgetResult(c)) != nullptr) {
      PQclear(res);
    }
  }
  PGresult* sync = PQgetResult(c);
  const bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  if (!synced || PQexitPipelineMode(c) != 1) {
    return lost(batch.back().what);
  }
  if (first) {
    return *first; // m_state holds its SQLSTATE, for retryable()
  }
  return util::ok_status();
}

Result<Rows> Conn::simple(const std::string& sql, std::string_view what)
{
  if (auto st = flush(); !st) {
    return st.error();
  }
  m_state.clear();
  PGresult* res = PQexec(m_conn.get(), sql.c_str());
  const auto st = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    auto e = error(res, what);
    PQclear(res);
    return e;
  }
  return Rows(res);
}

Result<std::unique_ptr<Conn>> connect(const PgOptions& options)
{
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.url.c_str(), &err);
  if (parsed == nullptr) {
    std::string why = scrubbed(trimmed(err), options.url);
    PQfreemem(err);
    return util::Error{Errc::invalid, fmt::format("the database URL {} is not valid: {}",
                                                  redact_url(options.url), why)};
  }
  // libpq checks a port only when it connects: a port that is not a number (or a list of
  // numbers) is the operator's to fix, not a server that might come back.
  std::string bad_port;
  for (auto* o = parsed; o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) == "port" && o->val != nullptr) {
      const std::string_view port(o->val);
      const bool digits =
          !port.empty() && port.find_first_not_of("0123456789,") == std::string_view::npos;
      if (!digits) {
        bad_port = port;
      }
    }
  }
  PQconninfoFree(parsed);
  if (!bad_port.empty()) {
    return util::Error{Errc::invalid, fmt::format("the database URL {} is not valid: its port "
                                                  "is not a number",
                                                  redact_url(options.url))};
  }
  const std::string timeout = std::to_string(std::max<std::uint32_t>(1, options.connect_timeout_s));
  std::vector<const char*> keys = {"dbname", "connect_timeout", "application_name",
                                   "client_encoding"};
  std::vector<const char*> values = {options.url.c_str(), timeout.c_str(),
                                     options.application_name.c_str(), "UTF8"};
  if (!options.passfile.empty()) {
    keys.push_back("passfile");
    values.push_back(options.passfile.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  // expand_dbname = 1: the URL's own settings, then ours where it has none.
  auto conn = std::make_unique<Conn>(PQconnectdbParams(keys.data(), values.data(), 1));
  if (conn->get() == nullptr) {
    return util::Error{Errc::unavailable, "the database is unavailable: out of memory"};
  }
  if (PQstatus(conn->get()) != CONNECTION_OK) {
    return util::Error{Errc::unavailable,
                       fmt::format("the database at {} is unavailable: {}", redact_url(options.url),
                                   scrubbed(trimmed(PQerrorMessage(conn->get())), options.url))};
  }
  // Every commit durable before it returns, whatever the server's default.
  if (auto r = conn->simple("SET synchronous_commit = on", "session"); !r) {
    return r.error();
  }
  return conn;
}

namespace {

// True when an idle connection has something to read: the server's goodbye (57P01 on a
// shutdown) or the end of the stream. No round trip: one poll.
bool closed_by_server(Conn& conn)
{
  pollfd p{PQsocket(conn.get()), POLLIN, 0};
  if (p.fd < 0) {
    return true;
  }
  if (::poll(&p, 1, 0) <= 0) {
    return false;
  }
  // The server's goodbye is not printed (libpq's notice processor writes to stderr): the
  // connection is dropped and the call goes on with a new one.
  const PQnoticeProcessor before = PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  const bool gone = PQconsumeInput(conn.get()) == 0 || PQstatus(conn.get()) != CONNECTION_OK;
  PQsetNoticeProcessor(conn.get(), before, nullptr); // pli sets no processor of its own
  if (gone) {
    return true;
  }
  // Something else arrived (a notice): the connection may still be fine.
  return false;
}

} // namespace

Lease::~Lease()
{
  if (m_pool != nullptr && m_conn) {
    m_pool->give_back(std::move(m_conn));
  }
}

Result<Lease> Pool::acquire()
{
  std::unique_lock lock(m_mu);
  const std::size_t limit = std::max<std::size_t>(1, m_options.pool);
  m_cv.wait(lock, [&] { return !m_idle.empty() || m_open < limit; });
  while (!m_idle.empty()) {
    auto conn = std::move(m_idle.back());
    m_idle.pop_back();
    if (closed_by_server(*conn)) {
      // The server closed it while idle (a restart): its statements would fail. A new one.
      --m_open;
      continue;
    }
    return Lease(this, std::move(conn));
  }
  ++m_open;
  lock.unlock();
  auto conn = connect(m_options);
  if (!conn) {
    lock.lock();
    --m_open;
    m_cv.notify_one();
    return conn.error();
  }
  return Lease(this, std::move(conn.value()));
}

void Pool::give_back(std::unique_ptr<Conn> conn)
{
  conn->discard_deferred();
  // A connection left inside a transaction (a failed ROLLBACK) is not reused either.
  const bool reusable = !conn->broken() && PQtransactionStatus(conn->get()) == PQTRANS_IDLE;
  std::vector<std::unique_ptr<Conn>> dropped;
  {
    std::lock_guard lock(m_mu);
    if (reusable) {
      m_idle.push_back(std::move(conn));
    } else {
      // A connection lost: the idle ones most likely went with it (a server restart). They
      // are closed too, so that the next calls connect anew instead of failing one by one.
      dropped.push_back(std::move(conn));
      if (PQstatus(dropped.back()->get()) != CONNECTION_OK || dropped.back()->broken()) {
        for (auto& idle : m_idle) {
          dropped.push_back(std::move(idle));
        }
        m_idle.clear();
      }
      m_open -= dropped.size();
    }
  }
  m_cv.notify_all();
}

Tx::~Tx()
{
  m_conn.discard_deferred();
  const auto state = PQtransactionStatus(m_conn.get());
  if (m_open && (state == PQTRANS_INTRANS || state == PQTRANS_INERROR)) {
    // Errors ignored: a broken connection is dropped by the pool, which also drops one left
    // in a transaction.
    (void)m_conn.simple("ROLLBACK", "rollback");
  }
}

util::Status Tx::begin(std::string_view mode)
{
  std::string sql = "BEGIN";
  if (!mode.empty()) {
    sql += " ";
    sql += mode;
  }
  // Sent with the transaction's first statement.
  m_conn.defer(sql, Params{}, "begin");
  m_open = true;
  return util::ok_status();
}

util::Status Tx::commit()
{
  m_conn.defer("COMMIT", Params{}, "commit");
  if (auto st = m_conn.flush(); !st) {
    return st.error();
  }
  m_open = false;
  return util::ok_status();
}

} // namespace pli::store::pq
