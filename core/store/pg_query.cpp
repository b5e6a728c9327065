// PgStore: listing (every filter of store::Query as a WHERE clause served by an index of
// deliveries: statuses, type, consultation, the words' GIN index, trigram indexes for the
// address substrings, the send time), for_each, retention (purge) and check.
#include "core/store/evidence.hpp"
#include "core/store/pg_store_impl.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <set>

namespace pli::store::detail {

namespace {

// A LIKE pattern matching `needle` anywhere (its %, _ and \ taken literally).
std::string contains_pattern(const std::string& needle)
{
  std::string out = "%";
  for (char c : needle) {
    if (c == '%' || c == '_' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "%";
}

// A prefix tsquery: every word must start an indexed word ('word':* & ...).
std::string prefix_query(const std::vector<std::string>& words)
{
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) {
      out += " & ";
    }
    out += '\'';
    for (char c : w) {
      if (c == '\'' || c == '\\') {
        out += c;
      }
      out += c;
    }
    out += "':*";
  }
  return out;
}

// The WHERE clause of a query over deliveries (alias d) and its parameters; `none` when it
// matches nothing (a sender or key that no row can hold).
struct Filter
{
  std::string where = "TRUE";
  pq::Params params;
  int n = 0;
  bool none = false;
  std::string next() { return "$" + std::to_string(++n); }
};

Filter filter_of(const Query& q)
{
  Filter f;
  if (!q.statuses.empty()) {
    std::string list = "{";
    for (std::size_t i = 0; i < q.statuses.size(); ++i) {
      list += (i > 0 ? "," : "") + std::to_string(static_cast<int>(q.statuses[i]));
    }
    f.where += " AND d.status = ANY(" + f.next() + "::smallint[])";
    f.params.literal(list + "}");
  }
  if (q.type) {
    f.where += " AND d.type = " + f.next();
    f.params.i16(static_cast<std::int16_t>(*q.type));
  }
  if (!q.consultation.empty()) {
    if (!storable_key(q.consultation)) {
      f.none = true;
    }
    f.where += " AND d.consultation = " + f.next() + " AND d.consultation <> ''";
    f.params.text(q.consultation);
  }
  const auto words = index_words(q.keywords);
  if (!words.empty()) {
    f.where += " AND d.words @@ " + f.next() + "::tsquery";
    f.params.literal(prefix_query(words));
  }
  auto storable = [&](const std::string& s) {
    if (s.find('\0') != std::string::npos || !util::is_utf8(s)) {
      f.none = true;
    }
  };
  if (!q.recipient.empty()) {
    const std::string needle = util::ascii_lower(q.recipient);
    storable(needle);
    f.where += " AND d.recipient LIKE " + f.next();
    f.params.text(contains_pattern(needle));
  }
  if (!q.sender.empty()) {
    const std::string needle = util::ascii_lower(q.sender);
    storable(needle);
    const std::string p = f.next();
    f.where += " AND (d.sender LIKE " + p + " OR d.from_header LIKE " + p + ")";
    f.params.text(contains_pattern(needle));
  }
  if (!q.senders.empty()) {
    std::vector<std::string> lower;
    for (const auto& s : q.senders) {
      lower.push_back(util::ascii_lower(s));
      storable(lower.back());
    }
    f.where += " AND d.sender = ANY(" + f.next() + "::text[])";
    f.params.literal(pq::text_array(lower));
  }
  if (q.since) {
    f.where += " AND d.sent_at >= " + f.next();
    f.params.i64(*q.since);
  }
  if (q.until) {
    f.where += " AND d.sent_at < " + f.next();
    f.params.i64(*q.until);
  }
  return f;
}

constexpr std::int64_t k_day = 86400LL * 1000000LL;

std::int64_t floor_day(std::int64_t micros)
{
  return micros / k_day - (micros % k_day < 0 ? 1 : 0);
}

// The total of a query that filters on statuses, type and send time only, from the
// deliveries' counts (pg_schema.cpp): the sum of the days inside [since, until) plus an exact
// count of the rows of the partial days at its edges (through the send time's index). Empty
// when the query has another filter.
std::optional<std::pair<std::string, pq::Params>> counted_total(const Query& q, const Filter& f)
{
  if (!q.consultation.empty() || !index_words(q.keywords).empty() || !q.recipient.empty() ||
      !q.sender.empty() || !q.senders.empty()) {
    return std::nullopt;
  }
  // Whole days [first, last): the first day that starts at or after `since`, the day of
  // `until` (excluded).
  const std::int64_t lowest = std::numeric_limits<std::int64_t>::min() / k_day + 1;
  const std::int64_t highest = std::numeric_limits<std::int64_t>::max() / k_day - 1;
  std::int64_t first = lowest;
  std::int64_t last = highest;
  if (q.since) {
    first = std::clamp(floor_day(*q.since) + (*q.since % k_day != 0 ? 1 : 0), lowest, highest);
  }
  if (q.until) {
    last = std::clamp(floor_day(*q.until), lowest, highest);
  }
  if (first >= last) {
    return std::nullopt; // under two days: the rows' own count is quick
  }
  pq::Params params = f.params;
  int n = f.n;
  auto next = [&] { return "$" + std::to_string(++n); };
  const std::string from_day = next();
  const std::string to_day = next();
  const std::string from_micros = next();
  const std::string to_micros = next();
  params.i64(first).i64(last).i64(first * k_day).i64(last * k_day);
  std::string counts =
      "SELECT coalesce(sum(c.n), 0)::bigint FROM delivery_counts c WHERE c.day >= " + from_day +
      " AND c.day < " + to_day;
  const std::string edges =
      f.where + " AND (d.sent_at < " + from_micros + " OR d.sent_at >= " + to_micros + ")";
  if (!q.statuses.empty()) {
    std::string list = "{";
    for (std::size_t i = 0; i < q.statuses.size(); ++i) {
      list += (i > 0 ? "," : "") + std::to_string(static_cast<int>(q.statuses[i]));
    }
    counts += " AND c.status = ANY(" + next() + "::smallint[])";
    params.literal(list + "}");
  }
  if (q.type) {
    counts += " AND c.type = " + next();
    params.i16(static_cast<std::int16_t>(*q.type));
  }
  return std::make_pair("SELECT (" + counts + ") + (SELECT count(*) FROM deliveries d WHERE " +
                            edges + ")",
                        std::move(params));
}

} // namespace

Result<ListResult> PgStore::list(const Query& q)
{
  ListResult result;
  Filter f = filter_of(q);
  if (f.none) {
    return result;
  }
  const std::size_t per_page = std::max<std::size_t>(1, q.per_page);
  const std::size_t first = (std::max<std::size_t>(1, q.page) - 1) * per_page;
  std::string count_sql = "SELECT count(*) FROM deliveries d WHERE " + f.where;
  pq::Params count_params = f.params;
  if (auto counted = counted_total(q, f)) {
    count_sql = std::move(counted->first);
    count_params = std::move(counted->second);
  }
  pq::Params page_params = f.params;
  const std::string limit = "$" + std::to_string(f.n + 1);
  const std::string offset = "$" + std::to_string(f.n + 2);
  page_params.i64(static_cast<std::int64_t>(per_page)).i64(static_cast<std::int64_t>(first));
  const std::string page_sql =
      "SELECT d.record, m.record FROM (SELECT d.id, d.message, d.sent_at, d.record "
      "FROM deliveries d WHERE " +
      f.where + " ORDER BY d.sent_at DESC, d.id LIMIT " + limit + " OFFSET " + offset +
      ") d JOIN messages m ON m.id = d.message ORDER BY d.sent_at DESC, d.id";
  // The total and the page from one snapshot. The total of a filter on statuses, type and
  // send time is a sum of the deliveries' counts (counted_total); others count the matching
  // rows through their indexes.
  // XXX: a filter that matches most rows through a word or an address substring (a word in
  // most messages, ".example") still counts them: 200-380 ms at 1,000,000 deliveries on a
  // 2-core VM, over the 100 ms. Counts by word or address would cost the writers one counter
  // row per word of every message.
  auto st = in_transaction(
      [&](pq::Conn& conn) -> util::Status {
        auto total = conn.exec(count_sql, count_params, "list total");
        if (!total) {
          return total.error();
        }
        result.total = static_cast<std::size_t>(total->integer(0, 0));
        if (first >= result.total) {
          return util::ok_status();
        }
        auto rows = conn.exec(page_sql, page_params, "list");
        if (!rows) {
          return rows.error();
        }
        for (int i = 0; i < rows->size(); ++i) {
          auto d = decode<pb::Delivery>(rows->bytes(i, 0), "delivery");
          auto m = decode<pb::Message>(rows->bytes(i, 1), "message");
          if (d && m) { // an undecodable record is skipped, never fatal for a listing
            result.items.push_back(ListItem{std::move(d.value()), std::move(m.value())});
          }
        }
        return util::ok_status();
      },
      "ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (!st) {
    return st.error();
  }
  return result;
}

Result<std::size_t> PgStore::for_each(const Query& q,
                                      const std::function<bool(const ListItem&)>& fn)
{
  Filter f = filter_of(q);
  if (f.none) {
    return std::size_t{0};
  }
  // Pages of 500 after the last row seen (send time, then id): the connection is given back
  // before `fn` runs, so that it may use the store itself.
  const std::string after_t = "$" + std::to_string(f.n + 1);
  const std::string after_id = "$" + std::to_string(f.n + 2);
  const std::string first_sql = "SELECT d.sent_at, d.id, d.record, m.record FROM deliveries d "
                                "JOIN messages m ON m.id = d.message WHERE " +
                                f.where + " ORDER BY d.sent_at DESC, d.id LIMIT 500";
  const std::string next_sql = "SELECT d.sent_at, d.id, d.record, m.record FROM deliveries d "
                               "JOIN messages m ON m.id = d.message WHERE " +
                               f.where + " AND (d.sent_at < " + after_t +
                               " OR (d.sent_at = " + after_t + " AND d.id > " + after_id +
                               ")) ORDER BY d.sent_at DESC, d.id LIMIT 500";
  std::size_t n = 0;
  std::optional<std::pair<util::Micros, std::string>> last;
  for (;;) {
    pq::Params params = f.params;
    if (last) {
      params.i64(last->first).text(last->second);
    }
    auto rows = query(last ? next_sql : first_sql, params, "list");
    if (!rows) {
      return rows.error();
    }
    for (int i = 0; i < rows->size(); ++i) {
      last.emplace(rows->integer(i, 0), rows->text(i, 1));
      auto d = decode<pb::Delivery>(rows->bytes(i, 2), "delivery");
      auto m = decode<pb::Message>(rows->bytes(i, 3), "message");
      if (!d || !m) {
        continue;
      }
      ++n;
      if (!fn(ListItem{std::move(d.value()), std::move(m.value())})) {
        return n;
      }
    }
    if (rows->size() < 500) {
      return n;
    }
  }
}

Result<PurgeResult> PgStore::purge(util::Micros before, PurgeMode mode)
{
  PurgeResult result;
  const bool apply = mode == PurgeMode::apply;
  auto st = in_transaction([&](pq::Conn& conn) -> util::Status {
    result = PurgeResult{};
    if (apply) {
      // The one transaction allowed to delete events (the append-only trigger).
      if (auto r = conn.simple("SET LOCAL pli.purge = on", "purge"); !r) {
        return r.error();
      }
    }
    // The messages sent before `before`, oldest first (as the LMDB store lists them).
    auto ids = conn.exec("SELECT message FROM deliveries WHERE sent_at < $1 GROUP BY message "
                         "ORDER BY max(sent_at), min(id) DESC",
                         pq::Params{}.i64(before), "purge");
    if (!ids) {
      return ids.error();
    }
    std::vector<std::string> messages;
    for (int i = 0; i < ids->size(); ++i) {
      messages.push_back(ids->text(i, 0));
    }
    auto present = conn.exec("SELECT id FROM messages WHERE id = ANY($1::text[])",
                             pq::Params{}.literal(pq::text_array(messages)), "purge");
    if (!present) {
      return present.error();
    }
    std::set<std::string> exists;
    for (int i = 0; i < present->size(); ++i) {
      exists.insert(present->text(i, 0));
    }
    for (const auto& m : messages) {
      if (exists.count(m) != 0) {
        result.messages.push_back(m);
      }
    }
    if (result.messages.empty()) {
      return util::ok_status();
    }
    const std::string gone = pq::text_array(result.messages);
    auto count = [&](const std::string& sql, std::size_t& out) -> util::Status {
      auto r = conn.exec(sql, pq::Params{}.literal(gone), "purge");
      if (!r) {
        return r.error();
      }
      out = static_cast<std::size_t>(r->integer(0, 0));
      return util::ok_status();
    };
    const std::string of_deliveries = "(SELECT id FROM deliveries WHERE message = ANY($1::text[]))";
    // Blobs named by the purged messages and replies, and those still named by others.
    const std::string candidates = "SELECT DISTINCT b FROM (SELECT unnest(blobs) b FROM messages "
                                   "WHERE id = ANY($1::text[]) UNION ALL SELECT unnest(blobs) FROM "
                                   "replies WHERE message = ANY($1::text[])) c WHERE b <> ''";
    auto blobs = conn.exec(
        "WITH c AS (" + candidates +
            "), used AS (SELECT DISTINCT b FROM (SELECT unnest(blobs) b FROM messages WHERE "
            "NOT (id = ANY($1::text[])) AND blobs && ARRAY(SELECT b FROM c) UNION ALL SELECT "
            "unnest(blobs) FROM replies WHERE NOT (message = ANY($1::text[])) AND blobs && "
            "ARRAY(SELECT b FROM c)) u) SELECT c.b, c.b IN (SELECT b FROM used) FROM c",
        pq::Params{}.literal(gone), "purge blobs");
    if (!blobs) {
      return blobs.error();
    }
    std::vector<std::string> doomed;
    for (int i = 0; i < blobs->size(); ++i) {
      if (blobs->bytes(i, 1) == std::string_view("\1", 1)) {
        ++result.blobs_kept;
      } else {
        ++result.blobs_deleted;
        doomed.push_back(blobs->text(i, 0));
      }
    }
    if (!apply) {
      util::Status s = count("SELECT count(*) FROM deliveries WHERE message = ANY($1::text[])",
                             result.deliveries);
      s = s ? count("SELECT count(*) FROM events WHERE message = ANY($1::text[])", result.events)
            : s;
      s = s ? count("SELECT count(*) FROM tokens WHERE delivery IN " + of_deliveries, result.tokens)
            : s;
      s = s ? count("SELECT count(*) FROM replies WHERE message = ANY($1::text[])", result.replies)
            : s;
      return s;
    }
    auto remove = [&](const std::string& sql, std::size_t* out) -> util::Status {
      auto r = conn.exec(sql, pq::Params{}.literal(gone), "purge");
      if (!r) {
        return r.error();
      }
      if (out != nullptr) {
        *out = r->affected();
      }
      return util::ok_status();
    };
    util::Status s =
        remove("DELETE FROM tokens WHERE delivery IN " + of_deliveries, &result.tokens);
    s = s ? remove("DELETE FROM idempotency WHERE delivery IN " + of_deliveries, nullptr) : s;
    s = s ? remove("DELETE FROM replies WHERE message = ANY($1::text[])", &result.replies) : s;
    s = s ? remove("DELETE FROM deliveries WHERE message = ANY($1::text[])", &result.deliveries)
          : s;
    s = s ? remove("DELETE FROM events WHERE message = ANY($1::text[])", &result.events) : s;
    s = s ? remove("DELETE FROM chain_heads WHERE message = ANY($1::text[])", nullptr) : s;
    s = s ? remove("DELETE FROM msgids WHERE message = ANY($1::text[])", nullptr) : s;
    s = s ? remove("DELETE FROM messages WHERE id = ANY($1::text[])", nullptr) : s;
    if (!s) {
      return s;
    }
    auto r = conn.exec("DELETE FROM blobs WHERE sha256 = ANY($1::text[])",
                       pq::Params{}.literal(pq::text_array(doomed)), "purge blobs");
    return r ? util::ok_status() : util::Status(r.error());
  });
  if (!st) {
    return st.error();
  }
  return result;
}

Result<CheckResult> PgStore::check(CheckMode mode)
{
  CheckResult result;
  std::set<std::string> damaged_messages;
  struct Table
  {
    const char* name;
    const char* select; // key (printable), record, ordered by key
    const char* update; // the repaired record of key $1 (none for events: append-only)
    std::optional<std::string> (*run)(std::string_view, const std::string&, std::string_view,
                                      CheckResult&, std::set<std::string>&);
  };
  const Table tables[] = {
      {"messages", "SELECT id, record FROM messages ORDER BY id",
       "UPDATE messages SET record = $2 WHERE id = $1", &check_record<pb::Message>},
      {"deliveries", "SELECT id, record FROM deliveries ORDER BY id",
       "UPDATE deliveries SET record = $2 WHERE id = $1", &check_record<pb::Delivery>},
      {"events", "SELECT message || '/' || seq, record FROM events ORDER BY message, seq", nullptr,
       &check_record<pb::Event>},
      {"tokens", "SELECT hash, record FROM tokens ORDER BY hash",
       "UPDATE tokens SET record = $2 WHERE hash = $1", &check_record<pb::Token>},
      {"consultations", "SELECT reference, record FROM consultations ORDER BY reference",
       "UPDATE consultations SET record = $2 WHERE reference = $1",
       &check_record<pb::Consultation>},
      {"replies", "SELECT id, record FROM replies ORDER BY id",
       "UPDATE replies SET record = $2 WHERE id = $1", &check_record<pb::Reply>},
      {"credentials", "SELECT key, record FROM credentials ORDER BY key",
       "UPDATE credentials SET record = $2 WHERE key = $1", &check_record<pb::Credential>},
  };
  auto st = in_transaction(
      [&](pq::Conn& conn) -> util::Status {
        result = CheckResult{};
        damaged_messages.clear();
        for (const auto& t : tables) {
          // Through a binary cursor, 500 rows at a time: the records (and the bodies in them)
          // are never all in memory.
          if (auto r = conn.simple(
                  std::string("DECLARE pli_check BINARY NO SCROLL CURSOR FOR ") + t.select, t.name);
              !r) {
            return r.error();
          }
          for (;;) {
            auto rows = conn.simple("FETCH 500 FROM pli_check", t.name);
            if (!rows) {
              return rows.error();
            }
            for (int i = 0; i < rows->size(); ++i) {
              const std::string key = rows->text(i, 0);
              auto repaired = t.run(t.name, key, rows->bytes(i, 1), result, damaged_messages);
              if (!repaired) {
                continue;
              }
              auto& damaged = result.damaged.back();
              if (t.update == nullptr) {
                // Events are append-only in the database: read repaired, never rewritten.
                damaged.repairable = false;
                damaged.reason += "; events are append-only here: read repaired, not rewritten";
                continue;
              }
              if (mode != CheckMode::repair) {
                continue;
              }
              auto up = conn.exec(t.update, pq::Params{}.text(key).bytes(*repaired), t.name);
              if (!up) {
                return up.error();
              }
              damaged.repaired = true;
            }
            if (rows->size() < 500) {
              break;
            }
          }
          if (auto r = conn.simple("CLOSE pli_check", t.name); !r) {
            return r.error();
          }
        }
        return util::ok_status();
      },
      mode == CheckMode::repair ? "" : "ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (!st) {
    return st.error();
  }
  for (const auto& mid : damaged_messages) {
    auto events = events_of_message(mid);
    result.chains[mid] = events && verify_chain(events.value());
  }
  return result;
}

} // namespace pli::store::detail
