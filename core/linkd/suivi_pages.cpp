// The buyers' area's pages once signed in: the list and its filters, the CSV export, the
// detail with its timeline and replies, the receipt PDF (see suivi.hpp).
#include "core/cli/export.hpp"
#include "core/cli/printer.hpp"
#include "core/linkd/suivi.hpp"
#include "core/log/log.hpp"
#include "core/receipt/pdf.hpp"
#include "core/receipt/timeline.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace pli::linkd {

namespace {

constexpr std::size_t k_export_max = 100000; // rows of one CSV export (XXX: then cut)

std::string human(util::Micros t, const std::string& tz)
{
  return t == 0 ? std::string() : util::format_human(t, tz);
}

std::string form_value(const Request& r, const char* name)
{
  auto it = r.form.find(name);
  return it == r.form.end() ? std::string() : it->second;
}

// "2024-01-31" only: the date inputs' format.
bool plain_date(const std::string& s)
{
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') {
    return false;
  }
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
  }
  return true;
}

bool reply_opened(const std::vector<store::pb::Event>& events, const std::string& reply)
{
  for (const auto& e : events) {
    if (e.kind() == static_cast<std::uint32_t>(model::EventKind::reply_read)) {
      auto it = e.detail().find("reply");
      if (it != e.detail().end() && it->second == reply) {
        return true;
      }
    }
  }
  return false;
}

} // namespace

BuyersArea::Filters BuyersArea::filters(const Request& r, const Viewer& v) const
{
  Filters f;
  const auto loc = m_config.organisation.locale;
  const auto& tz = m_config.organisation.timezone;
  std::vector<std::string> statuses;
  std::string keywords, type, rcpt, consultation, since, until, per_page, page;
  for (const auto& [k, val] : r.query) {
    if (k == "status") {
      statuses.push_back(val);
    } else if (k == "q") {
      keywords = val;
    } else if (k == "type") {
      type = val;
    } else if (k == "rcpt") {
      rcpt = val;
    } else if (k == "consultation") {
      consultation = val;
    } else if (k == "since") {
      since = val;
    } else if (k == "until") {
      until = val;
    } else if (k == "per_page") {
      per_page = val;
    } else if (k == "page") {
      page = val;
    }
  }
  auto& q = f.q;
  auto add = [&](const std::string& k, const std::string& val) {
    f.query += (f.query.empty() ? "" : "&") + k + "=" + url_encode(val);
  };
  templates::List status_boxes;
  for (auto st : model::all_statuses()) {
    const std::string code(model::code(st));
    const bool on = std::find(statuses.begin(), statuses.end(), code) != statuses.end();
    if (on) {
      q.statuses.push_back(st);
      add("status", code);
    }
    status_boxes.push_back(templates::Map{
        {"code", code}, {"label", std::string(model::label(st, loc))}, {"checked", on}});
  }
  f.ctx["statuses"] = status_boxes;
  keywords = std::string(util::trim(keywords));
  if (!keywords.empty()) {
    q.keywords = keywords;
    add("q", keywords);
  }
  f.ctx["q"] = keywords;
  templates::List types;
  if (!type.empty()) {
    if (auto t = model::parse_message_type(type)) {
      q.type = *t;
      add("type", std::string(model::code(*t)));
    } else {
      f.error = m_en ? "Unknown message type." : "Type de courrier inconnu.";
    }
  }
  for (auto t : model::all_message_types()) {
    types.push_back(templates::Map{{"code", std::string(model::code(t))},
                                   {"label", std::string(model::label(t, loc))},
                                   {"selected", q.type && *q.type == t}});
  }
  f.ctx["types"] = types;
  rcpt = std::string(util::trim(rcpt));
  if (!rcpt.empty()) {
    q.recipient = rcpt;
    add("rcpt", rcpt);
  }
  f.ctx["rcpt"] = rcpt;
  consultation = std::string(util::trim(consultation));
  if (!consultation.empty()) {
    q.consultation = consultation;
    add("consultation", consultation);
  }
  f.ctx["consultation"] = consultation;
  auto date = [&](const std::string& text, bool end) -> std::optional<util::Micros> {
    if (text.empty()) {
      return std::nullopt;
    }
    auto t = plain_date(text) ? util::parse_local(text, tz) : std::nullopt;
    if (!t) {
      f.error = m_en ? "Dates are written YYYY-MM-DD." : "Les dates s'écrivent AAAA-MM-JJ.";
      return std::nullopt;
    }
    return end ? *t + 86400LL * 1000000LL : *t; // "until" includes that whole day
  };
  q.since = date(since, false);
  q.until = date(until, true);
  if (q.since) {
    add("since", since);
  }
  if (q.until) {
    add("until", until);
  }
  if (q.since && q.until && *q.until <= *q.since) {
    f.error = m_en ? "The end date is before the start date."
                   : "La date de fin précède la date de début.";
  }
  f.ctx["since"] = since;
  f.ctx["until"] = until;
  q.per_page = per_page == "25" ? 25 : per_page == "50" ? 50 : 10;
  if (q.per_page != 10) {
    add("per_page", std::to_string(q.per_page));
  }
  templates::List sizes;
  for (std::size_t n : {10, 25, 50}) {
    sizes.push_back(templates::Map{{"n", std::to_string(n)}, {"selected", q.per_page == n}});
  }
  f.ctx["per_page"] = sizes;
  q.page = 1;
  if (!page.empty() && page.size() <= 6 &&
      page.find_first_not_of("0123456789") == std::string::npos) {
    q.page = std::max<std::size_t>(1, std::stoul(page));
  }
  // Rights last, so that no query parameter can widen them.
  q.senders = v.senders;
  q.sender.clear();
  PLI_ASSERT(v.admin || !q.senders.empty());
  return f;
}

Response BuyersArea::list(const Request& r, const Viewer& v)
{
  const auto loc = m_config.organisation.locale;
  const auto& tz = m_config.organisation.timezone;
  Filters f = filters(r, v);
  templates::Map ctx = f.ctx;
  ctx["page_title"] = std::string(m_en ? "Sent mail tracking" : "Suivi des courriers envoyés");
  const std::string base = "/suivi/?" + f.query + (f.query.empty() ? "" : "&");
  ctx["export_href"] = "/suivi/export.csv" + (f.query.empty() ? "" : "?" + f.query);
  ctx["filtered"] = !f.query.empty();
  if (!f.error.empty()) {
    ctx["error"] = f.error;
    return html(400, "suivi_list", ctx, &v);
  }
  auto res = m_store.list(f.q);
  if (!res) {
    m_app.m_metrics.error(ErrorKind::store);
    return m_app.page(503, "unavailable");
  }
  const std::size_t per = f.q.per_page;
  const std::size_t pages = res->total == 0 ? 1 : (res->total + per - 1) / per;
  const std::size_t page = f.q.page;
  ctx["total"] = std::to_string(res->total);
  ctx["plural"] = res->total > 1 || (m_en && res->total == 0);
  ctx["page"] = std::to_string(page);
  ctx["pages"] = std::to_string(pages);
  ctx["several_pages"] = pages > 1;
  templates::List rows;
  for (const auto& it : res->items) {
    const auto& d = it.delivery;
    const auto& m = it.message;
    templates::List dates;
    auto date = [&](const char* letter, const char* fr, const char* en, util::Micros t) {
      if (t != 0) {
        dates.push_back(templates::Map{{"letter", std::string(letter)},
                                       {"title", std::string(m_en ? en : fr)},
                                       {"at", human(t, tz)}});
      }
    };
    date("E", "Envoi", "Sent", d.sent_at());
    date("D", d.failed_at() != 0 && d.delivered_at() == 0 ? "Non délivré" : "Délivré",
         d.failed_at() != 0 && d.delivered_at() == 0 ? "Not delivered" : "Delivered",
         d.delivered_at() != 0 ? d.delivered_at() : d.failed_at());
    date("L", "Lu", "Read", d.read_at());
    date("R", "Réponse", "Reply", d.replied_at());
    const auto status = static_cast<model::Status>(d.status());
    rows.push_back(templates::Map{
        {"status", std::string(model::label(status, loc))},
        {"status_code", std::string(model::code(status))},
        {"dates", dates},
        {"type", std::string(model::label(static_cast<model::MessageType>(m.type()), loc))},
        {"subject",
         m.subject().empty() ? std::string(m_en ? "(no subject)" : "(sans objet)") : m.subject()},
        {"recipient", d.recipient()},
        {"sender", m.sender()},
        {"excerpt", cli::cut(m.text_body().substr(0, 600), 120)},
        {"href", "/suivi/d/" + d.id()}});
  }
  ctx["rows"] = rows;
  ctx["empty"] = rows.empty();
  ctx["beyond"] = rows.empty() && res->total > 0;
  ctx["first_href"] = base + "page=1";
  ctx["show_sender"] = v.admin || v.senders.size() > 1;
  // Page numbers: the first, the last and two around the current one.
  templates::List links;
  std::size_t last_shown = 0;
  for (std::size_t p = 1; p <= pages; ++p) {
    if (p != 1 && p != pages && (p + 2 < page || p > page + 2)) {
      continue;
    }
    if (last_shown != 0 && p > last_shown + 1) {
      links.push_back(templates::Map{{"gap", true}});
    }
    links.push_back(templates::Map{{"n", std::to_string(p)},
                                   {"href", base + "page=" + std::to_string(p)},
                                   {"current", p == page}});
    last_shown = p;
  }
  ctx["page_links"] = links;
  if (page > 1 && page <= pages) {
    ctx["prev_href"] = base + "page=" + std::to_string(page - 1);
  }
  if (page < pages) {
    ctx["next_href"] = base + "page=" + std::to_string(page + 1);
  }
  return html(200, "suivi_list", ctx, &v);
}

Response BuyersArea::export_csv(const Request& r, const Viewer& v)
{
  Filters f = filters(r, v);
  if (!f.error.empty()) {
    return message(400, m_en ? "Export impossible" : "Export impossible", f.error, &v);
  }
  Response resp;
  resp.content_type = "text/csv; charset=utf-8";
  resp.body = std::string(cli::k_utf8_bom) + cli::csv_header();
  const auto& tz = m_config.organisation.timezone;
  std::size_t rows = 0;
  auto st = m_store.for_each(f.q, [&](const store::ListItem& item) {
    resp.body += cli::csv_row(item, tz);
    return ++rows < k_export_max;
  });
  if (!st) {
    m_app.m_metrics.error(ErrorKind::store);
    return m_app.page(503, "unavailable");
  }
  add_security_headers(resp.headers);
  resp.headers.emplace_back(
      "Content-Disposition",
      content_disposition(m_en ? "mail-tracking.csv" : "suivi-courriers.csv"));
  log::line(log::Level::info, "",
            {{"suivi", "export"}, {"address", v.address}, {"rows", std::to_string(rows)}});
  return resp;
}

Response BuyersArea::detail(const Request& r, const Viewer& v, const std::string& id,
                            const std::string& rest)
{
  const auto loc = m_config.organisation.locale;
  const auto& tz = m_config.organisation.timezone;
  if (id.empty() || id.size() > 64 || id[0] != 'd') {
    return m_app.page(404, "not_found");
  }
  auto x = receipt::gather(m_store, id);
  if (!x) {
    if (x.error().code == store::Errc::not_found) {
      return m_app.page(404, "not_found");
    }
    m_app.m_metrics.error(ErrorKind::store);
    return m_app.page(503, "unavailable");
  }
  // Outside one's rights: the same answer as an unknown id.
  if (!visible(v, x->message)) {
    log::line(log::Level::notice, "",
              {{"suivi", "denied"}, {"address", v.address}, {"delivery", id}});
    return m_app.page(404, "not_found");
  }
  const auto& d = x->delivery;
  const auto& m = x->message;
  if (rest == "/receipt.pdf" && r.method == "GET") {
    return receipt(d);
  }
  if (rest.rfind("/reply/", 0) == 0) {
    std::string reply = rest.substr(7);
    std::string tail;
    if (auto slash = reply.find('/'); slash != std::string::npos) {
      tail = reply.substr(slash);
      reply = reply.substr(0, slash);
    }
    if (std::find(d.reply_ids().begin(), d.reply_ids().end(), reply) == d.reply_ids().end()) {
      return m_app.page(404, "not_found");
    }
    if (tail.empty() && r.method == "POST") {
      return open_reply(r, v, d, m, reply);
    }
    if (tail.rfind("/a/", 0) == 0 && r.method == "GET") {
      return reply_file(r, d, m, reply, tail);
    }
    return m_app.page(405, "not_allowed");
  }
  if (!rest.empty() || r.method != "GET") {
    return m_app.page(404, "not_found");
  }
  const auto status = static_cast<model::Status>(d.status());
  templates::Map ctx{
      {"page_title",
       m.subject().empty() ? std::string(m_en ? "(no subject)" : "(sans objet)") : m.subject()},
      {"recipient", d.recipient()},
      {"sender", receipt::sender_display(m)},
      {"subject", m.subject()},
      {"type_label", std::string(model::label(static_cast<model::MessageType>(m.type()), loc))},
      {"sent_at", human(m.sent_at(), tz)},
      {"status", std::string(model::label(status, loc))},
      {"status_code", std::string(model::code(status))},
      {"id", d.id()},
      {"csrf", v.csrf}};
  if (!m.consultation().empty()) {
    templates::Map c{{"reference", m.consultation()}};
    if (x->consultation && !x->consultation->title().empty()) {
      c["title"] = x->consultation->title();
    }
    ctx["consultation"] = c;
  }
  if (!m.text_body().empty()) {
    ctx["text_body"] = m.text_body();
  }
  templates::List atts;
  for (const auto& a : m.attachments()) {
    atts.push_back(templates::Map{
        {"name", a.name()}, {"size", human_size(a.size(), m_en)}, {"sha256", a.sha256()}});
  }
  ctx["attachments"] = atts;
  ctx["has_attachments"] = !atts.empty();
  templates::List events;
  // This delivery's events, bounded: repeated ones past the first few are summarised.
  for (const auto& row : receipt::timeline_rows(*x, d.id(), loc, tz)) {
    if (row.event == nullptr) {
      events.push_back(templates::Map{
          {"at", std::string()}, {"sentence", row.sentence}, {"kind", std::string("summary")}});
      continue;
    }
    const auto& e = *row.event;
    templates::Map ev{{"at", human(e.at(), tz)},
                      {"sentence", row.sentence},
                      {"kind", std::string(model::code(static_cast<model::EventKind>(e.kind())))}};
    if (!row.evidence.empty()) {
      ev["evidence"] = row.evidence;
    }
    auto rid = e.detail().find("reply");
    if (e.kind() == static_cast<std::uint32_t>(model::EventKind::reply) &&
        rid != e.detail().end()) {
      templates::Map rep{{"id", rid->second},
                         {"action", "/suivi/d/" + d.id() + "/reply/" + rid->second},
                         {"csrf", v.csrf}};
      if (reply_opened(x->events, rid->second)) {
        if (auto rp = m_store.get_reply(rid->second)) {
          rep["text"] = rp->text();
          templates::List files;
          for (int i = 0; i < rp->attachments_size(); ++i) {
            const auto& a = rp->attachments(i);
            files.push_back(templates::Map{{"name", a.name()},
                                           {"size", human_size(a.size(), m_en)},
                                           {"sha256", a.sha256()},
                                           {"href", "/suivi/d/" + d.id() + "/reply/" + rid->second +
                                                        "/a/" + std::to_string(i)}});
          }
          rep["files"] = files;
          rep["has_files"] = !files.empty();
          rep["opened"] = true;
        }
      }
      ev["reply"] = rep;
    }
    events.push_back(ev);
  }
  ctx["events"] = events;
  ctx["pdf_href"] = "/suivi/d/" + d.id() + "/receipt.pdf";
  return html(200, "suivi_detail", ctx, &v);
}

Response BuyersArea::receipt(const store::pb::Delivery& d)
{
  auto key = receipt::load_signing_key(m_config.keys.dir);
  if (!key) {
    log::line(log::Level::error, "", {{"suivi", "receipt"}, {"keys", key.error().message}});
    m_app.m_metrics.error(ErrorKind::internal);
    return m_app.page(503, "unavailable");
  }
  auto x = receipt::gather(m_store, d.id());
  if (!x) {
    m_app.m_metrics.error(ErrorKind::store);
    return m_app.page(503, "unavailable");
  }
  receipt::ReceiptOptions o;
  o.organisation = m_config.organisation.name;
  o.locale = m_config.organisation.locale;
  o.timezone = m_config.organisation.timezone;
  o.issued_at = m_app.m_clock();
  auto pdf = receipt::make_receipt(x.value(), o, key.value());
  if (!pdf) {
    log::line(log::Level::error, "", {{"suivi", "receipt"}, {"pdf", pdf.error().message}});
    m_app.m_metrics.error(ErrorKind::internal);
    return m_app.page(503, "unavailable");
  }
  Response resp;
  resp.content_type = "application/pdf";
  resp.body = std::move(pdf->pdf);
  add_security_headers(resp.headers);
  resp.headers.emplace_back(
      "Content-Disposition",
      content_disposition((m_en ? "receipt-" : "accuse-de-reception-") + d.id() + ".pdf"));
  return resp;
}

Response BuyersArea::open_reply(const Request& r, const Viewer& v, const store::pb::Delivery& d,
                                const store::pb::Message& /*m*/, const std::string& reply)
{
  if (!equal_secret(form_value(r, "csrf"), v.csrf)) {
    return message(403, m_en ? "Form expired" : "Formulaire expiré",
                   m_en ? "This form is no longer valid. Reload the page and try again."
                        : "Ce formulaire n'est plus valable. Rechargez la page et recommencez.",
                   &v);
  }
  if (!m_app.record(d.id(), model::EventKind::reply_read, r,
                    {{"reply", reply}, {"by", v.address}})) {
    return m_app.page(503, "unavailable");
  }
  m_app.m_metrics.count(Counter::reply_read);
  return redirect("/suivi/d/" + d.id() + "#reply-" + reply);
}

Response BuyersArea::reply_file(const Request& r, const store::pb::Delivery& d,
                                const store::pb::Message& m, const std::string& reply,
                                const std::string& rest)
{
  auto events = m_store.events_of_message(m.id());
  auto rp = m_store.get_reply(reply);
  if (!events || !rp) {
    m_app.m_metrics.error(ErrorKind::store);
    return m_app.page(503, "unavailable");
  }
  if (!reply_opened(events.value(), reply)) {
    return m_app.page(403, "reply_first");
  }
  App::Link l{"", {}, d, m, std::move(rp.value()), m_app.m_clock()};
  return m_app.download(r, l, rest);
}

} // namespace pli::linkd
