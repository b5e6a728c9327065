// pli receipt ID [--recipient ADDR] -o FILE.pdf: the signed acknowledgment of receipt.
// pli verify FILE.pdf: checks a receipt's embedded evidence and signature (exit 0 valid,
// 1 altered or unsigned) and prints the evidence.
#include "admin-cli/cli.hpp"
#include "core/receipt/pdf.hpp"
#include "core/receipt/pdf_reader.hpp"
#include "core/receipt/signed_evidence.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace pli::admin {

namespace {

struct ReceiptArgs
{
  std::string id, recipient, output;
} rargs;

struct VerifyArgs
{
  std::string file;
} vargs;

int run_receipt(Context& ctx)
{
  auto key = receipt::load_signing_key(ctx.config.keys.dir);
  if (!key) {
    throw Failure(k_exit_config, fmt::format("no receipt signing key: {} (create one with "
                                             "`pli keygen`; keys.dir is {})",
                                             key.error().message, ctx.config.keys.dir));
  }
  auto d = resolve_delivery(*ctx.store, rargs.id, rargs.recipient);
  auto x = checked(receipt::gather(*ctx.store, d.id()));
  receipt::ReceiptOptions o;
  o.organisation = ctx.config.organisation.name;
  o.locale = ctx.config.organisation.locale;
  o.timezone = ctx.config.organisation.timezone;
  o.issued_at = util::now_micros();
  auto r = receipt::make_receipt(x, o, key.value());
  if (!r) {
    throw Failure(k_exit_store, r.error().message);
  }
  if (auto st = receipt::write_file_atomic(rargs.output, r->pdf); !st) {
    throw Failure(k_exit_cant_create, st.error().message);
  }
  const bool fr = o.locale == model::Locale::fr;
  ctx.out.document({{"file", rargs.output},
                    {"delivery", d.id()},
                    {"recipient", d.recipient()},
                    {"pages", r->pages},
                    {"bytes", r->pdf.size()},
                    {"verification_code", r->code},
                    {"kid", key->kid}});
  ctx.out.line(
      fr ? fmt::format("Accusé de réception de {} écrit dans {} ({} page{}, code de "
                       "vérification {}).",
                       d.recipient(), rargs.output, r->pages, r->pages > 1 ? "s" : "", r->code)
         : fmt::format("Receipt for {} written to {} ({} page{}, verification code {}).",
                       d.recipient(), rargs.output, r->pages, r->pages > 1 ? "s" : "", r->code));
  return 0;
}

int run_verify(Context& ctx)
{
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  std::ifstream in(vargs.file, std::ios::binary);
  if (!in) {
    throw Failure(k_exit_usage, fmt::format("cannot read {}", vargs.file));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string pdf = buf.str();
  auto key = receipt::load_public_key(ctx.config.keys.dir);
  if (!key) {
    throw Failure(k_exit_config,
                  fmt::format("no public key to verify with: {}", key.error().message));
  }
  auto invalid = [&](const std::string& reason, const nlohmann::json& extra) {
    nlohmann::json doc = {{"file", vargs.file}, {"valid", false}, {"reason", reason}};
    doc.update(extra);
    ctx.out.document(doc);
    ctx.out.line(fmt::format("{} : {}", fr ? "INVALIDE" : "INVALID", reason));
    return k_exit_invalid;
  };
  auto files = receipt::embedded_files(pdf);
  if (!files) {
    return invalid(files.error().message, nlohmann::json::object());
  }
  auto ev = files->find("evidence.json");
  auto sig = files->find("evidence.sig");
  if (ev == files->end() || sig == files->end()) {
    return invalid(fr ? "le document ne contient pas de preuve signée (evidence.json et "
                        "evidence.sig)"
                      : "the document holds no signed evidence (evidence.json and evidence.sig)",
                   nlohmann::json::object());
  }
  auto v = receipt::verify_evidence(ev->second, sig->second, key.value());
  if (!v.valid) {
    return invalid(v.reason, {{"kid", v.kid}, {"verification_code", v.code}});
  }
  const auto& e = v.evidence;
  ctx.out.document({{"file", vargs.file},
                    {"valid", true},
                    {"kid", v.kid},
                    {"verification_code", v.code},
                    {"evidence", e}});
  ctx.out.line(
      fr ? fmt::format("VALIDE : signature Ed25519 de la clé {} ; code de vérification {}", v.kid,
                       v.code)
         : fmt::format("VALID: Ed25519 signature by key {}; verification code {}", v.kid, v.code));
  auto str = [](const nlohmann::json& j, const char* k) {
    return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>()
                                                              : std::string();
  };
  const auto& m = e["message"];
  const auto& d = e["delivery"];
  ctx.out.field(fr ? "Organisation" : "Organisation", str(e, "organisation"));
  ctx.out.field(fr ? "Émis le" : "Issued on", str(e, "issued_at"));
  ctx.out.field(fr ? "Objet" : "Subject", str(m, "subject"));
  ctx.out.field("Type", str(m, "type"));
  ctx.out.field(fr ? "Expéditeur" : "Sender", str(m, "sender"));
  ctx.out.field(fr ? "Destinataire" : "Recipient", str(d, "recipient"));
  ctx.out.field(fr ? "Envoyé le" : "Sent on", str(m, "sent_at"));
  ctx.out.field(fr ? "Statut" : "Status", str(d, "status"));
  if (m.contains("consultation") && m["consultation"].is_object()) {
    ctx.out.field("Consultation", str(m["consultation"], "reference"));
  }
  ctx.out.field("SHA-256", str(m, "original_sha256"));
  if (m.contains("attachments")) {
    for (const auto& a : m["attachments"]) {
      ctx.out.field(fr ? "Pièce jointe" : "Attachment", str(a, "name") + " " + str(a, "sha256"));
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& x : e["events"]) {
    if (x.value("redacted", false)) {
      continue;
    }
    std::string detail;
    if (x.contains("detail")) {
      for (const auto& [k, val] : x["detail"].items()) {
        detail += (detail.empty() ? "" : ", ") + k + "=" +
                  (val.is_string() ? val.get<std::string>() : val.dump());
      }
    }
    rows.push_back({std::to_string(x.value("seq", 0)), str(x, "at_iso"), str(x, "kind"),
                    cli::cut(detail, 80)});
  }
  ctx.out.heading(fr ? "Événements (chaîne intacte)" : "Events (chain intact)");
  ctx.out.table({"#", "Date", fr ? "Événement" : "Event", fr ? "Preuve" : "Evidence"}, rows);
  ctx.out.field(fr ? "Tête de chaîne" : "Chain head", str(e, "chain_head"));
  return 0;
}

} // namespace

Command receipt_command()
{
  return Command{
      "receipt", "write the signed acknowledgment of receipt (PDF) of a delivery",
      StoreAccess::read,
      [](CLI::App& app) {
        app.add_option("ID", rargs.id, "delivery id, message id or Message-ID")->required();
        app.add_option("--recipient", rargs.recipient,
                       "the recipient, when the message has several");
        app.add_option("-o,--output", rargs.output, "the PDF file to write")->required();
      },
      run_receipt};
}

Command verify_command()
{
  return Command{
      "verify", "check a receipt's signed evidence (exit 0 valid, 1 altered or unsigned)",
      StoreAccess::none,
      [](CLI::App& app) { app.add_option("FILE", vargs.file, "the receipt PDF")->required(); },
      run_verify};
}

} // namespace pli::admin
