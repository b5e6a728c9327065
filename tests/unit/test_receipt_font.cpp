// The receipts' font: the compiled-in subset of DejaVuSans covers French and the Latin
// scripts of Europe; a receipt whose text needs more (Greek, Cyrillic, U+FFFD...) is drawn
// with the whole font; both give the same text (pdftotext) and the same glyphs (pdftoppm:
// the subset's glyph map, cut after the highest character drawn, draws what the whole font
// draws).
#include "core/receipt/font.hpp"
#include "core/receipt/keys.hpp"
#include "core/receipt/pdf.hpp"
#include "core/receipt/pdf_reader.hpp"
#include "core/receipt/signed_evidence.hpp"
#include "core/store/evidence.hpp"
#include "core/util/crypto.hpp"

#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace pli;
using model::EventKind;

namespace {

using pli::test::TempDir;

constexpr util::Micros k_t0 = 1656685605LL * 1000000LL;

receipt::Exchange exchange_with(const std::string& subject, const std::string& attachment)
{
  receipt::Exchange x;
  auto& m = x.message;
  m.set_id("m1");
  m.set_subject(subject);
  m.set_type(static_cast<std::uint32_t>(model::MessageType::attribution));
  m.set_mode(1);
  m.set_sender("alice@buyer.example");
  m.set_sent_at(k_t0);
  m.set_original_sha256(util::sha256_hex("original"));
  m.set_original_size(8);
  auto* a = m.add_attachments();
  a->set_name(attachment);
  a->set_size(1234);
  a->set_sha256(util::sha256_hex("attachment"));
  x.delivery.set_id("d1");
  x.delivery.set_message("m1");
  x.delivery.set_recipient("bob@remote.example");
  x.delivery.set_status(static_cast<std::uint32_t>(model::Status::read));
  store::pb::Event e;
  e.set_version(1);
  e.set_message("m1");
  e.set_delivery("d1");
  e.set_seq(1);
  e.set_kind(static_cast<std::uint32_t>(EventKind::sent));
  e.set_at(k_t0);
  e.set_hash(store::event_hash(e));
  x.events.push_back(e);
  return x;
}

// Runs `command` and returns its standard output ("" when it fails).
std::string run(const std::string& command)
{
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) {
    return out;
  }
  char buf[65536];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) {
    out.append(buf, n);
  }
  return ::pclose(p) == 0 ? out : std::string();
}

std::string save(const fs::path& path, const std::string& data)
{
  std::ofstream(path, std::ios::binary) << data;
  return path.string();
}

bool have(const char* tool)
{
  return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

} // namespace

TEST_CASE("the subset covers French and the Latin scripts, not Greek or Cyrillic", "[receipt]")
{
  CHECK(receipt::subset_covers("Accusé de réception — « offre » n°3, œuvre à 5 € ; Œ ô ï ù ç"));
  CHECK(receipt::subset_covers("l’été… “quotes” ‘x’ – 10 % \u202f: ™ № ←"));
  CHECK(receipt::subset_covers("Łódź, Żółć, Kraków; Dvořák, Šťastný; Ärger, Straße; Ștefan"));
  CHECK(receipt::subset_covers("de\u0301cision.pdf")); // NFD, as macOS names files
  CHECK(receipt::subset_covers("line one\nline two"));
  CHECK_FALSE(receipt::subset_covers("Νίκος Παπαδόπουλος"));
  CHECK_FALSE(receipt::subset_covers("Москва"));
  CHECK_FALSE(receipt::subset_covers("\uFFFD"));
  CHECK_FALSE(receipt::subset_covers("\uFB01n")); // the ligature ﬁ: rare, whole font
  CHECK_FALSE(receipt::subset_covers("bad \xC3"));
  CHECK_FALSE(receipt::subset_covers("\x01"));
  receipt::TextScan scan;
  receipt::scan_text("a é", scan);
  CHECK(scan.max_code_point == 0xE9);
  receipt::scan_text("€", scan);
  CHECK(scan.max_code_point == 0x20AC);
  CHECK(scan.subset_covers);
  receipt::scan_text("Ω", scan);
  CHECK_FALSE(scan.subset_covers);
}

TEST_CASE("a receipt uses the subset when it covers the text, the whole font otherwise",
          "[receipt]")
{
  TempDir dir;
  auto kp = receipt::generate_keys((dir.path / "k").string(), receipt::Overwrite::refuse);
  REQUIRE(kp.ok());
  receipt::ReceiptOptions o;
  o.organisation = "Région Exemple";
  o.issued_at = k_t0;

  auto fr = receipt::make_receipt(
      exchange_with("Attribution — « lot n°2 », œuvre à 5 €", "décision.pdf"), o, kp.value());
  REQUIRE(fr.ok());
  CHECK_FALSE(fr->whole_font);
  CHECK(fr->pdf.find("/BaseFont /PLIDJV+DejaVuSans") != std::string::npos);
  o.font = receipt::FontChoice::whole_font;
  auto whole = receipt::make_receipt(
      exchange_with("Attribution — « lot n°2 », œuvre à 5 €", "décision.pdf"), o, kp.value());
  REQUIRE(whole.ok());
  CHECK(whole->whole_font);
  CHECK(whole->pdf.find("/BaseFont /PLIDJV+DejaVuSans") == std::string::npos);
  CHECK(fr->pdf.size() * 2 < whole->pdf.size()); // the subset is the smaller file too
  o.font = receipt::FontChoice::subset_when_covered;

  // A Greek subject and a Polish file name: the whole font draws them.
  const std::string greek = "Ανάθεση σύμβασης — Νίκος Παπαδόπουλος";
  auto gr = receipt::make_receipt(exchange_with(greek, "Łódź-oferta.pdf"), o, kp.value());
  REQUIRE(gr.ok());
  CHECK(gr->whole_font);
  auto files = receipt::embedded_files(gr->pdf);
  REQUIRE(files.ok());
  CHECK(receipt::verify_evidence(files->at("evidence.json"), files->at("evidence.sig"), kp.value())
            .valid);
  // A Polish one alone stays with the subset.
  auto pl = receipt::make_receipt(exchange_with("Zamówienie — Łódź, Żółć", "Łódź-oferta.pdf"), o,
                                  kp.value());
  REQUIRE(pl.ok());
  CHECK_FALSE(pl->whole_font);

  if (!have("pdftotext") || !have("pdftoppm")) {
    WARN("poppler-utils (pdftotext, pdftoppm) missing: text and glyphs not compared");
    return;
  }
  SECTION("the text reads back, accents and Greek intact")
  {
    const std::string t =
        run("pdftotext -layout " + save(dir.path / "gr.pdf", gr->pdf) + " - 2>/dev/null");
    CHECK(t.find(greek) != std::string::npos);
    CHECK(t.find("Łódź-oferta.pdf") != std::string::npos);
    CHECK(t.find("Accusé de réception") != std::string::npos);
    const std::string p =
        run("pdftotext -layout " + save(dir.path / "pl.pdf", pl->pdf) + " - 2>/dev/null");
    CHECK(p.find("Zamówienie — Łódź, Żółć") != std::string::npos);
    const std::string f =
        run("pdftotext -layout " + save(dir.path / "fr.pdf", fr->pdf) + " - 2>/dev/null");
    CHECK(f.find("Attribution — « lot n°2 », œuvre à 5 €") != std::string::npos);
    CHECK(f ==
          run("pdftotext -layout " + save(dir.path / "whole.pdf", whole->pdf) + " - 2>/dev/null"));
  }
  SECTION("the subset draws the same glyphs as the whole font")
  {
    // Grey-scale rasters of the same receipt with each font: identical pixels, so every
    // character maps to its own glyph through the subset's CIDToGIDMap.
    const std::string a = run("pdftoppm -r 72 -gray " + save(dir.path / "fr.pdf", fr->pdf));
    const std::string b = run("pdftoppm -r 72 -gray " + save(dir.path / "whole.pdf", whole->pdf));
    REQUIRE(a.size() > 100000);
    CHECK(a == b);
    // ... and a receipt whose text differs does not (the comparison can fail).
    const std::string c = run("pdftoppm -r 72 -gray " + save(dir.path / "pl.pdf", pl->pdf));
    CHECK(a != c);
  }
}
