// pli receipt ID [--recipient ADDR] -o FILE.pdf: the signed acknowledgment of receipt.
// pli receipt ID... [--recipient ADDR] --out-dir DIR, pli receipt --consultation REF
// --out-dir DIR: receipts in bulk, one DELIVERY.pdf each (every recipient of a message
// ID; every delivery of the consultation), in one process.
// pli verify FILE.pdf: checks a receipt's embedded evidence, signature and page binding
// (exit 0 valid, 1 altered, forged or unsigned), prints the evidence and says what it did
// not check.
#include "admin-cli/cli.hpp"
#include "core/receipt/pdf.hpp"
#include "core/receipt/pdf_reader.hpp"
#include "core/receipt/signed_evidence.hpp"
#include "core/receipt/verify.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include <fstream>
#include <set>

namespace pli::admin {

namespace {

struct ReceiptArgs
{
  std::vector<std::string> ids;
  std::string recipient, output, out_dir, consultation;
} rargs;

struct VerifyArgs
{
  std::string file;
} vargs;

receipt::ReceiptOptions receipt_options(const config::Config& c)
{
  receipt::ReceiptOptions o;
  o.organisation = c.organisation.name;
  o.locale = c.organisation.locale;
  o.timezone = c.organisation.timezone;
  o.issued_at = util::now_micros();
  return o;
}

// The deliveries --out-dir makes receipts of: each ID's (all recipients of a message ID
// unless --recipient), then the consultation's, oldest first, each once.
std::vector<store::pb::Delivery> bulk_deliveries(store::Store& st)
{
  std::vector<store::pb::Delivery> out;
  std::set<std::string> seen;
  auto add = [&](store::pb::Delivery d) {
    if (seen.insert(d.id()).second) {
      out.push_back(std::move(d));
    }
  };
  for (const auto& id : rargs.ids) {
    std::string only;
    const std::string mid = resolve_message(st, id, &only);
    if (!only.empty() || !rargs.recipient.empty()) {
      add(resolve_delivery(st, id, rargs.recipient));
      continue;
    }
    const auto m = checked(st.get_message(mid));
    for (const auto& did : m.delivery_ids()) {
      add(checked(st.get_delivery(did)));
    }
  }
  if (!rargs.consultation.empty()) {
    store::Query q;
    q.consultation = rargs.consultation;
    q.per_page = 1000;
    std::vector<store::pb::Delivery> found;
    for (q.page = 1;; ++q.page) {
      auto page = checked(st.list(q));
      for (auto& it : page.items) {
        found.push_back(std::move(it.delivery));
      }
      if (page.items.size() < q.per_page || q.page * q.per_page >= page.total) {
        break;
      }
    }
    if (found.empty()) {
      throw Failure(k_exit_unknown_id,
                    fmt::format("no delivery in consultation '{}'", rargs.consultation));
    }
    for (auto it = found.rbegin(); it != found.rend(); ++it) { // newest first: reverse
      add(std::move(*it));
    }
  }
  return out;
}

// A delivery id as a file name (ids are letters and digits; anything else becomes '_').
std::string file_name(const std::string& id)
{
  std::string n = id;
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      c = '_';
    }
  }
  return n + ".pdf";
}

int run_receipt(Context& ctx)
{
  const bool bulk = !rargs.out_dir.empty();
  if (bulk == !rargs.output.empty()) {
    throw Failure(k_exit_usage, "give either -o FILE.pdf (one receipt) or --out-dir DIR");
  }
  if (!bulk && (rargs.ids.size() != 1 || !rargs.consultation.empty())) {
    throw Failure(k_exit_usage, "-o FILE.pdf writes one receipt: give one ID, or --out-dir DIR "
                                "for several");
  }
  if (rargs.ids.empty() && rargs.consultation.empty()) {
    throw Failure(k_exit_usage, "give an ID (or --consultation REF with --out-dir DIR)");
  }
  auto key = receipt::load_signing_key(ctx.config.keys.dir);
  if (!key) {
    throw Failure(k_exit_config, fmt::format("no receipt signing key: {} (create one with "
                                             "`pli keygen`; keys.dir is {})",
                                             key.error().message, ctx.config.keys.dir));
  }
  const receipt::ReceiptOptions o = receipt_options(ctx.config);
  const bool fr = o.locale == model::Locale::fr;
  // Writes the receipt of `d` to `path`, alone or in `batch`; returns its JSON.
  auto write_one = [&](const store::pb::Delivery& d, const std::string& path,
                       receipt::FileBatch* batch) {
    auto x = checked(receipt::gather(*ctx.store, d.id()));
    auto r = receipt::make_receipt(x, o, key.value());
    if (!r) {
      throw Failure(k_exit_store, r.error().message);
    }
    auto st =
        batch != nullptr ? batch->add(path, r->pdf) : receipt::write_file_atomic(path, r->pdf);
    if (!st) {
      throw Failure(k_exit_cant_create, st.error().message);
    }
    return nlohmann::json{
        {"file", path},      {"delivery", d.id()},     {"recipient", d.recipient()},
        {"pages", r->pages}, {"bytes", r->pdf.size()}, {"verification_code", r->code},
        {"kid", key->kid}};
  };

  if (!bulk) {
    auto d = resolve_delivery(*ctx.store, rargs.ids.front(), rargs.recipient);
    auto doc = write_one(d, rargs.output, nullptr);
    const int pages = doc["pages"].get<int>();
    const std::string code = doc["verification_code"].get<std::string>();
    ctx.out.document(doc);
    ctx.out.line(fr ? fmt::format("Accusé de réception de {} écrit dans {} ({} page{}, code de "
                                  "vérification {}).",
                                  d.recipient(), rargs.output, pages, pages > 1 ? "s" : "", code)
                    : fmt::format("Receipt for {} written to {} ({} page{}, verification code {}).",
                                  d.recipient(), rargs.output, pages, pages > 1 ? "s" : "", code));
    return 0;
  }

  // Every id is resolved before the first file is written: an unknown one writes nothing.
  const auto deliveries = bulk_deliveries(*ctx.store);
  if (::mkdir(rargs.out_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    throw Failure(k_exit_cant_create,
                  fmt::format("cannot create {}: {}", rargs.out_dir, std::strerror(errno)));
  }
  // All or nothing, and one file system flush for all the files (FileBatch).
  receipt::FileBatch batch;
  nlohmann::json written = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : deliveries) {
    auto doc = write_one(d, rargs.out_dir + "/" + file_name(d.id()), &batch);
    rows.push_back({doc["file"].get<std::string>(), d.recipient(),
                    std::to_string(doc["pages"].get<int>()),
                    doc["verification_code"].get<std::string>()});
    written.push_back(std::move(doc));
  }
  if (auto st = batch.commit(); !st) {
    throw Failure(k_exit_cant_create, st.error().message);
  }
  ctx.out.document({{"dir", rargs.out_dir}, {"count", written.size()}, {"receipts", written}});
  ctx.out.table({fr ? "Fichier" : "File", fr ? "Destinataire" : "Recipient", "Pages",
                 fr ? "Code de vérification" : "Verification code"},
                rows);
  ctx.out.line(fr ? fmt::format("{} accusé{} de réception écrit{} dans {}.", written.size(),
                                written.size() > 1 ? "s" : "", written.size() > 1 ? "s" : "",
                                rargs.out_dir)
                  : fmt::format("{} receipt{} written to {}.", written.size(),
                                written.size() > 1 ? "s" : "", rargs.out_dir));
  return 0;
}

int run_verify(Context& ctx)
{
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  std::ifstream in(vargs.file, std::ios::binary);
  if (!in) {
    throw Failure(k_exit_usage, fmt::format("cannot read {}", vargs.file));
  }
  // At most one byte more than the reader takes: a larger file is refused, never read whole.
  std::string pdf(receipt::PdfLimits{}.max_file_bytes + 1, '\0');
  in.read(pdf.data(), static_cast<std::streamsize>(pdf.size()));
  pdf.resize(static_cast<std::size_t>(in.gcount()));
  auto key = receipt::load_public_key(ctx.config.keys.dir);
  if (!key) {
    throw Failure(k_exit_config,
                  fmt::format("no public key to verify with: {}", key.error().message));
  }
  auto c = receipt::check_receipt(pdf, key.value(), ctx.config.organisation.locale);
  auto state_unchecked = [&] {
    ctx.out.heading(fr ? "Non vérifié" : "Not checked");
    for (const auto& n : c.not_checked) {
      ctx.out.line("- " + n);
    }
  };
  if (!c.valid) {
    nlohmann::json doc = {{"file", vargs.file},
                          {"valid", false},
                          {"reason", c.reason},
                          {"pages", receipt::code(c.pages)},
                          {"not_checked", c.not_checked}};
    if (!c.kid.empty() || !c.code.empty()) {
      doc["kid"] = c.kid;
      doc["verification_code"] = c.code;
    }
    ctx.out.document(doc);
    ctx.out.line(fmt::format("{} : {}", fr ? "INVALIDE" : "INVALID", cli::cut(c.reason, 400)));
    state_unchecked();
    return k_exit_invalid;
  }
  const auto& e = c.evidence;
  ctx.out.document({{"file", vargs.file},
                    {"valid", true},
                    {"kid", c.kid},
                    {"verification_code", c.code},
                    {"pages", receipt::code(c.pages)},
                    {"page_count", c.page_count},
                    {"not_checked", c.not_checked},
                    {"evidence", e}});
  ctx.out.line(
      fr ? fmt::format("VALIDE : signature Ed25519 de la clé {} ; code de vérification {}", c.kid,
                       c.code)
         : fmt::format("VALID: Ed25519 signature by key {}; verification code {}", c.kid, c.code));
  if (c.pages == receipt::PageBinding::bound) {
    ctx.out.line(
        fr ? fmt::format("Pages : le contenu des {} page(s) est celui qui a été signé.",
                         c.page_count)
           : fmt::format("Pages: the content of the {} page(s) is the signed one.", c.page_count));
  } else {
    ctx.out.line(fr ? "Pages : NON LIÉES à la preuve (accusé de réception d'une version "
                      "antérieure) ; seule la preuve signée ci-dessous fait foi."
                    : "Pages: NOT BOUND to the evidence (a receipt of an earlier version); only "
                      "the signed evidence below is authoritative.");
  }
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
  state_unchecked();
  return 0;
}

} // namespace

Command receipt_command()
{
  return Command{
      "receipt",
      "write the signed acknowledgment of receipt (PDF) of a delivery, or many (--out-dir)",
      StoreAccess::read,
      [](CLI::App& app) {
        app.add_option("ID", rargs.ids,
                       "delivery id, message id or Message-ID (several with --out-dir)");
        app.add_option("--recipient", rargs.recipient,
                       "the recipient, when the message has several");
        app.add_option("-o,--output", rargs.output, "the PDF file to write (one receipt)");
        app.add_option("--out-dir", rargs.out_dir,
                       "write DELIVERY.pdf in this directory for each delivery: every "
                       "recipient of a message ID, every delivery of --consultation");
        app.add_option("--consultation", rargs.consultation,
                       "with --out-dir: the receipts of every delivery of this consultation");
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
