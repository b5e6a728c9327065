// pli show ID [--json]: one exchange, its deliveries and their timelines.
#include "admin-cli/cli.hpp"
#include "core/cli/views.hpp"
#include "core/receipt/timeline.hpp"

#include <fmt/format.h>

namespace pli::admin {

namespace {

struct Args
{
  std::string id;
} args;

int run_show(Context& ctx)
{
  auto& st = *ctx.store;
  std::string only_delivery;
  const std::string mid = resolve_message(st, args.id, &only_delivery);
  auto m = checked(st.get_message(mid));
  std::vector<store::pb::Delivery> ds;
  for (const auto& did : m.delivery_ids()) {
    if (only_delivery.empty() || did == only_delivery) {
      ds.push_back(checked(st.get_delivery(did)));
    }
  }
  auto events = checked(st.events_of_message(mid));
  const auto& tz = ctx.config.organisation.timezone;
  const auto loc = ctx.config.organisation.locale;
  const bool fr = loc == model::Locale::fr;
  ctx.out.document(cli::message_json(m, ds, events, tz));

  auto& out = ctx.out;
  out.field("Message", m.id());
  out.field(fr ? "Objet" : "Subject", m.subject());
  out.field("Type", std::string(model::label(static_cast<model::MessageType>(m.type()), loc)));
  out.field("Mode", static_cast<model::Mode>(m.mode()) == model::Mode::ar
                        ? (fr ? "avec accusé de réception" : "with receipt")
                        : "simple");
  if (!m.consultation().empty()) {
    std::string c = m.consultation();
    if (auto con = st.get_consultation(m.consultation()); con && !con->title().empty()) {
      c += " — " + con->title();
    }
    out.field("Consultation", c);
  }
  out.field(fr ? "Expéditeur" : "Sender", receipt::sender_display(m));
  out.field(fr ? "Envoyé le" : "Sent on", human(ctx.config, m.sent_at()));
  if (!m.message_id().empty()) {
    out.field("Message-ID", "<" + m.message_id() + ">");
  }
  out.field(fr ? "Empreinte" : "SHA-256", m.original_sha256());
  for (const auto& a : m.attachments()) {
    out.field(fr ? "Pièce jointe" : "Attachment", fmt::format("{} ({} {}, {})", a.name(), a.size(),
                                                              fr ? "octets" : "bytes", a.sha256()));
  }
  for (const auto& d : ds) {
    receipt::Exchange x{m, d, events, std::nullopt};
    out.heading(fmt::format("{} {} — {}{} ({})", fr ? "Destinataire" : "Recipient", d.recipient(),
                            model::label(static_cast<model::Status>(d.status()), loc),
                            d.revoked() ? (fr ? ", lien révoqué" : ", link revoked") : "", d.id()));
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : events) {
      if (e.delivery() == d.id()) {
        // An event stored with text that was not UTF-8 (older versions) is shown repaired.
        const std::string repaired =
            e.damaged_record().empty() ? "" : (fr ? "[texte réparé] " : "[text repaired] ");
        rows.push_back({human(ctx.config, e.at()), receipt::event_sentence(e, x, loc),
                        cli::cut(repaired + receipt::event_evidence(e, loc), 90)});
      }
    }
    out.table({"Date", fr ? "Événement" : "Event", fr ? "Preuve" : "Evidence"}, rows);
  }
  return 0;
}

} // namespace

Command show_command()
{
  return Command{
      "show", "one exchange: its deliveries and events", StoreAccess::read,
      [](CLI::App& app) {
        app.add_option("ID", args.id, "message id, delivery id or Message-ID")->required();
      },
      run_show};
}

} // namespace pli::admin
