// Receipts: the signed evidence (sign, verify, tampering, wrong key, broken chain), the
// PDF (embedded files read back byte for byte by our own reader, page count with many
// events), and the keys (0600, refuse to overwrite).
#include "core/receipt/errc.hpp"
#include "core/receipt/keys.hpp"
#include "core/receipt/pdf.hpp"
#include "core/receipt/pdf_reader.hpp"
#include "core/receipt/signed_evidence.hpp"
#include "core/receipt/verify.hpp"
#include "core/store/evidence.hpp"
#include "core/util/crypto.hpp"

#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <qpdf/QPDF.hh>
#include <qpdf/QPDFEFStreamObjectHelper.hh>
#include <qpdf/QPDFEmbeddedFileDocumentHelper.hh>
#include <qpdf/QPDFFileSpecObjectHelper.hh>
#include <qpdf/QPDFPageDocumentHelper.hh>
#include <qpdf/QPDFPageObjectHelper.hh>
#include <qpdf/QPDFWriter.hh>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

namespace fs = std::filesystem;
using namespace pli;
using model::EventKind;

namespace {

using pli::test::TempDir;

constexpr util::Micros k_t0 = 1656685605LL * 1000000LL; // 2022-07-01 14:26:45 UTC

// An exchange of one message to two recipients; `downloads` download events for the first.
receipt::Exchange exchange(int downloads = 0)
{
  receipt::Exchange x;
  auto& m = x.message;
  m.set_id("m1");
  m.set_message_id("m1@buyer.example");
  m.set_subject("Résultat — « offre » œuvre €");
  m.set_type(static_cast<std::uint32_t>(model::MessageType::rejet));
  m.set_mode(1);
  m.set_sender("alice@buyer.example");
  m.set_from_header("Alice Martin <alice@buyer.example>");
  m.set_sent_at(k_t0);
  m.set_consultation("2022AK_014");
  m.set_original_sha256(util::sha256_hex("original"));
  m.set_original_size(8);
  auto* a = m.add_attachments();
  a->set_name("décision.pdf");
  a->set_size(1234);
  a->set_sha256(util::sha256_hex("attachment"));
  x.delivery.set_id("d1");
  x.delivery.set_message("m1");
  x.delivery.set_recipient("bob@remote.example");
  x.delivery.set_status(static_cast<std::uint32_t>(model::Status::read));
  store::pb::Consultation c;
  c.set_reference("2022AK_014");
  c.set_title("Entretien des espaces verts");
  c.set_object("Marché à bons de commande");
  c.set_deadline(k_t0 + 86400LL * 1000000LL * 30);
  x.consultation = c;
  std::string prev;
  std::uint32_t seq = 0;
  auto add = [&](const std::string& delivery, EventKind k, util::Micros at,
                 std::map<std::string, std::string> detail) {
    store::pb::Event e;
    e.set_version(1);
    e.set_message("m1");
    e.set_delivery(delivery);
    e.set_seq(++seq);
    e.set_kind(static_cast<std::uint32_t>(k));
    e.set_at(at);
    for (const auto& [key, v] : detail) {
      (*e.mutable_detail())[key] = v;
    }
    e.set_prev_hash(prev);
    e.set_hash(store::event_hash(e));
    prev = e.hash();
    x.events.push_back(e);
  };
  add("d1", EventKind::sent, k_t0, {});
  add("d2", EventKind::sent, k_t0, {});
  add("d1", EventKind::delivered, k_t0 + 2000000,
      {{"remote_mta", "mx.remote.example"}, {"diagnostic", "250 2.0.0 Ok: queued"}});
  add("d2", EventKind::failed, k_t0 + 3000000, {{"diagnostic", "550 5.1.1 unknown"}});
  add("d1", EventKind::read, k_t0 + 3600000000LL, {{"ip", "192.0.2.7"}, {"user_agent", "UA"}});
  for (int i = 0; i < downloads; ++i) {
    add("d1", EventKind::download, k_t0 + 3700000000LL + i * 1000000LL,
        {{"ip", "192.0.2.7"}, {"name", "décision.pdf"}});
  }
  return x;
}

receipt::KeyPair keys(const fs::path& dir)
{
  auto kp = receipt::generate_keys(dir.string(), receipt::Overwrite::refuse);
  REQUIRE(kp.ok());
  return kp.value();
}

} // namespace

TEST_CASE("keys: created 0600 (0640 as root), loaded back, never overwritten without force",
          "[receipt]")
{
  TempDir dir;
  auto kp = keys(dir.path / "keys");
  struct stat sb;
  REQUIRE(::stat((dir.path / "keys/receipt.key").c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == (::geteuid() == 0 ? 0640 : 0600));
  CHECK(kp.kid.size() == 16);
  auto again = receipt::generate_keys((dir.path / "keys").string(), receipt::Overwrite::refuse);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == receipt::Errc::exists);
  auto loaded = receipt::load_signing_key((dir.path / "keys").string());
  REQUIRE(loaded.ok());
  CHECK(loaded->public_key == kp.public_key);
  CHECK(receipt::load_public_key((dir.path / "keys").string())->kid == kp.kid);
  auto forced = receipt::generate_keys((dir.path / "keys").string(), receipt::Overwrite::force);
  REQUIRE(forced.ok());
  CHECK(forced->kid != kp.kid);
  CHECK_FALSE(receipt::load_signing_key((dir.path / "nokeys").string()).ok());

  if (::geteuid() == 0) {
    // root: keys root-owned in a root-owned directory, readable by its group (pli).
    fs::create_directory(dir.path / "owned");
    REQUIRE(::chown((dir.path / "owned").c_str(), 0, 1) == 0);
    REQUIRE(::chmod((dir.path / "owned").c_str(), 0750) == 0);
    REQUIRE(receipt::generate_keys((dir.path / "owned").string(), receipt::Overwrite::refuse).ok());
    REQUIRE(::stat((dir.path / "owned/receipt.key").c_str(), &sb) == 0);
    CHECK(sb.st_uid == 0);
    CHECK(sb.st_gid == 1);
    CHECK((sb.st_mode & 0777) == 0640);
    // A key directory another user owns: that user could swap the keys; refused.
    fs::create_directory(dir.path / "users");
    REQUIRE(::chown((dir.path / "users").c_str(), 1, 1) == 0);
    auto e = receipt::generate_keys((dir.path / "users").string(), receipt::Overwrite::refuse);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().message.find("not owned by root") != std::string::npos);
    CHECK(fs::is_empty(dir.path / "users"));
  }
}

TEST_CASE("keygen never follows a planted symlink, nor uses a key directory others can change",
          "[receipt]")
{
  TempDir dir;
  const fs::path keys_dir = dir.path / "keys";
  fs::create_directory(keys_dir);
  fs::permissions(keys_dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  // Files outside the key directory that planted links point at.
  for (const char* n : {"victim.tmp", "victim.key", "victim.pub", "victim.pem"}) {
    std::ofstream(dir.path / n) << "untouched";
  }
  fs::create_symlink(dir.path / "victim.tmp", keys_dir / "receipt.key.tmp");
  fs::create_symlink(dir.path / "victim.tmp", keys_dir / "receipt.pub.tmp");
  fs::create_symlink(dir.path / "victim.tmp", keys_dir / "receipt.pub.pem.tmp");
  fs::create_symlink(dir.path / "victim.key", keys_dir / "receipt.key");
  fs::create_symlink(dir.path / "victim.pub", keys_dir / "receipt.pub");
  fs::create_symlink(dir.path / "victim.pem", keys_dir / "receipt.pub.pem");
  auto untouched = [&] {
    for (const char* n : {"victim.tmp", "victim.key", "victim.pub", "victim.pem"}) {
      std::ifstream in(dir.path / n);
      INFO(n);
      CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "untouched");
      struct stat sb;
      REQUIRE(::stat((dir.path / n).c_str(), &sb) == 0);
      CHECK(sb.st_uid == ::geteuid());
    }
  };
  // A symlink at receipt.key is an existing key: refused without --force.
  auto refused = receipt::generate_keys(keys_dir.string(), receipt::Overwrite::refuse);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == receipt::Errc::exists);
  untouched();
  auto kp = receipt::generate_keys(keys_dir.string(), receipt::Overwrite::force);
  REQUIRE(kp.ok());
  untouched();
  for (const char* n : {"receipt.key", "receipt.pub", "receipt.pub.pem"}) {
    INFO(n);
    CHECK(fs::is_regular_file(fs::symlink_status(keys_dir / n)));
  }
  CHECK(receipt::load_signing_key(keys_dir.string())->kid == kp->kid);

  SECTION("a key directory that is a symlink")
  {
    fs::create_symlink(keys_dir, dir.path / "link");
    auto e = receipt::generate_keys((dir.path / "link").string(), receipt::Overwrite::force);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().message.find("symlink") != std::string::npos);
  }
  SECTION("a key directory others can write in")
  {
    fs::permissions(keys_dir, fs::perms::others_write, fs::perm_options::add);
    auto e = receipt::generate_keys(keys_dir.string(), receipt::Overwrite::force);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().message.find("writable by its group or others") != std::string::npos);
  }
}

TEST_CASE("evidence: signed, verified, and any change is caught", "[receipt]")
{
  TempDir dir;
  auto kp = keys(dir.path / "k");
  auto x = exchange();
  const std::string ev = receipt::evidence_json(x, {"Région Exemple", "Europe/Paris", k_t0});
  const std::string sig = receipt::sign_evidence(ev, kp);
  auto v = receipt::verify_evidence(ev, sig, kp);
  CHECK(v.valid);
  CHECK(v.kid == kp.kid);
  CHECK(v.code == receipt::verification_code(ev));
  CHECK(v.code.size() == 19);
  // Other recipients' events are links of the chain only.
  CHECK(ev.find("550 5.1.1") == std::string::npos);
  CHECK(ev.find("\"redacted\":true") != std::string::npos);
  CHECK(ev.find("Résultat — « offre » œuvre €") != std::string::npos);

  SECTION("one changed byte")
  {
    std::string t = ev;
    t[t.find("bob@remote")] = 'B';
    auto tv = receipt::verify_evidence(t, sig, kp);
    CHECK_FALSE(tv.valid);
    CHECK(tv.reason.find("altered") != std::string::npos);
  }
  SECTION("another key")
  {
    auto other = keys(dir.path / "other");
    auto tv = receipt::verify_evidence(ev, sig, other);
    CHECK_FALSE(tv.valid);
    CHECK(tv.reason.find(kp.kid) != std::string::npos);
  }
  SECTION("a re-signed evidence whose chain does not hold")
  {
    auto broken = x;
    (*broken.events[2].mutable_detail())["diagnostic"] = "250 forged";
    const std::string bev =
        receipt::evidence_json(broken, {"Région Exemple", "Europe/Paris", k_t0});
    auto tv = receipt::verify_evidence(bev, receipt::sign_evidence(bev, kp), kp);
    CHECK_FALSE(tv.valid);
    CHECK(tv.reason.find("event 3") != std::string::npos);
  }
  SECTION("a signature that is not one")
  {
    CHECK_FALSE(receipt::verify_evidence(ev, "{}", kp).valid);
    CHECK_FALSE(receipt::verify_evidence(ev, "not json", kp).valid);
  }
}

TEST_CASE("the receipt PDF embeds the evidence, read back byte for byte", "[receipt]")
{
  TempDir dir;
  auto kp = keys(dir.path / "k");
  auto x = exchange();
  receipt::ReceiptOptions o;
  o.organisation = "Région Exemple";
  o.issued_at = k_t0 + 7200000000LL;
  auto r = receipt::make_receipt(x, o, kp);
  REQUIRE(r.ok());
  CHECK(r->pdf.rfind("%PDF-1.4", 0) == 0);
  CHECK(r->pages == 1);
  auto files = receipt::embedded_files(r->pdf);
  REQUIRE(files.ok());
  REQUIRE(files->size() == 4);
  CHECK(files->at("pages.json") == r->binding);
  CHECK(files->at("pages.sig") == r->binding_signature);
  CHECK(files->at("evidence.json") == r->evidence);
  CHECK(files->at("evidence.sig") == r->signature);
  CHECK(receipt::verify_evidence(files->at("evidence.json"), files->at("evidence.sig"), kp).valid);
  // No path of ours leaks into the PDF.
  CHECK(r->pdf.find("/tmp") == std::string::npos);

  SECTION("one byte of the embedded evidence changed in the file")
  {
    std::string pdf = r->pdf;
    auto at = pdf.find("\"recipient\":\"bob@remote.example\"");
    REQUIRE(at != std::string::npos);
    pdf[at + 14] = 'c'; // bob -> cob, same length: the file stays readable
    auto f = receipt::embedded_files(pdf);
    REQUIRE(f.ok());
    CHECK_FALSE(receipt::verify_evidence(f->at("evidence.json"), f->at("evidence.sig"), kp).valid);
  }
  SECTION("a stream length that no longer matches: what is read is never the signed evidence")
  {
    std::string pdf = r->pdf;
    auto at = pdf.find("\"chain_head\"");
    REQUIRE(at != std::string::npos);
    pdf.insert(at, " ");
    auto f = receipt::embedded_files(pdf); // qpdf reads on, as viewers do
    if (f.ok() && f->count("evidence.json") != 0) {
      CHECK_FALSE(receipt::check_receipt(pdf, kp, model::Locale::en).valid);
    }
  }
  SECTION("not a PDF")
  {
    CHECK_FALSE(receipt::embedded_files("hello").ok());
  }
  SECTION("a missing whole font is an error with its path, when the receipt needs it")
  {
    auto bad = o;
    bad.font_path = "/nonexistent/font.ttf";
    CHECK(receipt::make_receipt(x, bad, kp).ok()); // the subset covers this text
    bad.font = receipt::FontChoice::whole_font;
    auto e = receipt::make_receipt(x, bad, kp);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().message.find("/nonexistent/font.ttf") != std::string::npos);
  }
}

TEST_CASE("a receipt with many events runs over pages", "[receipt]")
{
  TempDir dir;
  auto kp = keys(dir.path / "k");
  receipt::ReceiptOptions o;
  o.organisation = "Région Exemple";
  o.issued_at = k_t0;
  auto small = receipt::make_receipt(exchange(0), o, kp);
  auto big = receipt::make_receipt(exchange(40), o, kp);
  REQUIRE(small.ok());
  REQUIRE(big.ok());
  CHECK(small->pages == 1);
  CHECK(big->pages >= 2);
  o.locale = model::Locale::en;
  auto en = receipt::make_receipt(exchange(1), o, kp);
  REQUIRE(en.ok());
  CHECK(receipt::embedded_files(en->pdf).ok());
}

TEST_CASE("timeline sentences are the platform's", "[receipt]")
{
  auto x = exchange(1);
  CHECK(receipt::event_sentence(x.events[0], x, model::Locale::fr) ==
        "Envoi du courrier par alice@buyer.example");
  CHECK(receipt::event_sentence(x.events[2], x, model::Locale::fr) ==
        "Courrier délivré à bob@remote.example");
  CHECK(receipt::event_sentence(x.events[4], x, model::Locale::fr) ==
        "Courrier lu par bob@remote.example");
  CHECK(receipt::event_sentence(x.events[5], x, model::Locale::fr) ==
        "Pièce jointe « décision.pdf » téléchargée par bob@remote.example");
  CHECK(receipt::event_sentence(x.events[4], x, model::Locale::en) ==
        "Mail read by bob@remote.example");
  CHECK(receipt::event_evidence(x.events[2], model::Locale::fr) ==
        "serveur distant : mx.remote.example ; diagnostic : 250 2.0.0 Ok: queued");
  CHECK(receipt::event_evidence(x.events[4], model::Locale::en) ==
        "IP address: 192.0.2.7; browser: UA");
}

TEST_CASE("FileBatch: files appear only at commit, all of them; none without commit", "[receipt]")
{
  TempDir dir;
  auto read = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto names = [&] {
    std::vector<std::string> n;
    for (const auto& e : fs::directory_iterator(dir.path)) {
      n.push_back(e.path().filename().string());
    }
    std::sort(n.begin(), n.end());
    return n;
  };
  {
    receipt::FileBatch batch;
    REQUIRE(batch.add((dir.path / "a.pdf").string(), "AAA").ok());
    REQUIRE(batch.add((dir.path / "b.pdf").string(), "BB").ok());
    CHECK_FALSE(fs::exists(dir.path / "a.pdf"));
    CHECK(names().size() == 2); // the temporary files
    REQUIRE(batch.commit().ok());
  }
  CHECK(names() == std::vector<std::string>{"a.pdf", "b.pdf"});
  CHECK(read(dir.path / "a.pdf") == "AAA");
  CHECK(read(dir.path / "b.pdf") == "BB");
  // 0600 whatever the umask: a receipt holds the reader's IP address.
  struct stat sb;
  REQUIRE(::stat((dir.path / "b.pdf").c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0600);
  {
    receipt::FileBatch batch;
    REQUIRE(batch.add((dir.path / "c.pdf").string(), "C").ok());
    REQUIRE(batch.add((dir.path / "a.pdf").string(), "new").ok());
  } // no commit: nothing changes, no temporary file left
  CHECK(names() == std::vector<std::string>{"a.pdf", "b.pdf"});
  CHECK(read(dir.path / "a.pdf") == "AAA");
  receipt::FileBatch bad;
  auto st = bad.add((dir.path / "missing/x.pdf").string(), "x");
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("missing") != std::string::npos);
  CHECK(bad.commit().ok()); // nothing to do
}

namespace {

// A PDF written by qpdf from `q`.
std::string written(QPDF& q)
{
  QPDFWriter w(q);
  w.setOutputMemory();
  w.setStaticID(true);
  w.write();
  auto buf = w.getBufferSharedPointer();
  return std::string(reinterpret_cast<const char*>(buf->getBuffer()), buf->getSize());
}

// Embeds `files` in `q`'s /EmbeddedFiles name tree (replacing files of the same names).
void embed(QPDF& q, const std::map<std::string, std::string>& files)
{
  QPDFEmbeddedFileDocumentHelper efdh(q);
  for (const auto& [name, data] : files) {
    efdh.replaceEmbeddedFile(name, QPDFFileSpecObjectHelper::createFileSpec(
                                       q, name, QPDFEFStreamObjectHelper::createEFStream(q, data)));
  }
}

// A new one-page document saying `text` in Helvetica.
std::string forged_page(const std::string& text, const std::map<std::string, std::string>& files)
{
  QPDF q;
  q.emptyPDF();
  auto font = q.makeIndirectObject(
      QPDFObjectHandle::parse("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"));
  auto page = q.makeIndirectObject(QPDFObjectHandle::parse(
      "<< /Type /Page /MediaBox [0 0 595 842] /Resources << /Font << /F1 null >> >> >>"));
  page.getKey("/Resources").getKey("/Font").replaceKey("/F1", font);
  page.replaceKey("/Contents", q.newStream("BT /F1 12 Tf 72 720 Td (" + text + ") Tj ET\n"));
  QPDFPageDocumentHelper(q).addPage(QPDFPageObjectHelper(page), false);
  embed(q, files);
  return written(q);
}

} // namespace

TEST_CASE("pli verify: the page is bound to the evidence; a forged page never verifies",
          "[receipt][verify]")
{
  TempDir dir;
  auto kp = keys(dir.path / "k");
  receipt::ReceiptOptions o;
  o.organisation = "Région Exemple";
  o.issued_at = k_t0;
  auto r = receipt::make_receipt(exchange(40), o, kp);
  REQUIRE(r.ok());
  REQUIRE(r->pages >= 2);
  auto read = receipt::read_pdf(r->pdf);
  REQUIRE(read.ok());
  // The hashes signed before libharu wrote the file are those of the pages as written.
  auto binding = nlohmann::json::parse(r->binding);
  CHECK(binding["evidence_sha256"] == util::sha256_hex(r->evidence));
  CHECK(binding["pages"].get<std::vector<std::string>>() == read->page_content_sha256);
  CHECK(nlohmann::json::parse(r->evidence)["page_binding"] == "pages.json");

  auto genuine = receipt::check_receipt(r->pdf, kp, model::Locale::en);
  CHECK(genuine.valid);
  CHECK(genuine.reason.empty());
  CHECK(genuine.pages == receipt::PageBinding::bound);
  CHECK(genuine.page_count == static_cast<std::size_t>(r->pages));
  REQUIRE_FALSE(genuine.not_checked.empty());
  CHECK(genuine.not_checked[0].find("PDF file as a whole is not signed") != std::string::npos);
  CHECK(genuine.not_checked[1].find("fonts") != std::string::npos);
  auto fr = receipt::check_receipt(r->pdf, kp, model::Locale::fr);
  CHECK(fr.not_checked[0].find("n'est pas signé") != std::string::npos);

  SECTION("a new document carrying the genuine evidence objects, its page saying otherwise")
  {
    auto forged = forged_page("Courrier lu le 01/01/2020", read->files);
    REQUIRE(receipt::embedded_files(forged).ok());
    auto c = receipt::check_receipt(forged, kp, model::Locale::en);
    CHECK_FALSE(c.valid);
    CHECK(c.pages == receipt::PageBinding::mismatch);
    // Without the page binding: the evidence says its pages are bound.
    auto only_evidence = read->files;
    only_evidence.erase("pages.json");
    only_evidence.erase("pages.sig");
    auto stripped = receipt::check_receipt(forged_page("lu le 01/01/2020", only_evidence), kp,
                                           model::Locale::en);
    CHECK_FALSE(stripped.valid);
    CHECK(stripped.reason.find("no page binding") != std::string::npos);
  }
  SECTION("the genuine receipt with one page's content changed")
  {
    QPDF q;
    q.processMemoryFile("r", r->pdf.data(), r->pdf.size());
    auto page = QPDFPageDocumentHelper(q).getAllPages().front();
    auto contents = page.getObjectHandle().getKey("/Contents");
    auto data = contents.getStreamData();
    std::string text(reinterpret_cast<const char*>(data->getBuffer()), data->getSize());
    auto at = text.find("Tj");
    REQUIRE(at != std::string::npos);
    text.insert(at, " ");
    contents.replaceStreamData(text, QPDFObjectHandle::newNull(), QPDFObjectHandle::newNull());
    auto c = receipt::check_receipt(written(q), kp, model::Locale::en);
    CHECK_FALSE(c.valid);
    CHECK(c.reason.find("content of page 1 is not the signed one") != std::string::npos);
  }
  SECTION("a page added or removed")
  {
    QPDF q;
    q.processMemoryFile("r", r->pdf.data(), r->pdf.size());
    QPDFPageDocumentHelper pages(q);
    pages.removePage(pages.getAllPages().back());
    auto c = receipt::check_receipt(written(q), kp, model::Locale::en);
    CHECK_FALSE(c.valid);
    CHECK(c.reason.find("page(s), the document has") != std::string::npos);
  }
  SECTION("evidence objects the catalog does not reach do not count")
  {
    std::string pdf = r->pdf;
    auto at = pdf.find("/EmbeddedFiles");
    REQUIRE(at != std::string::npos);
    pdf.replace(at, 14, "/EmbeddedFilez"); // the objects stay in the file, unreferenced
    auto c = receipt::check_receipt(pdf, kp, model::Locale::en);
    CHECK_FALSE(c.valid);
    CHECK(c.reason.find("no signed evidence") != std::string::npos);
  }
  SECTION("a receipt made before the page binding: evidence valid, pages stated not bound")
  {
    // The layout of format 1: evidence.json (format_version 1, no page_binding) and
    // evidence.sig only.
    auto old = nlohmann::json::parse(r->evidence);
    old["format_version"] = 1;
    old.erase("page_binding");
    const std::string ev = old.dump();
    QPDF q;
    q.processMemoryFile("r", r->pdf.data(), r->pdf.size());
    QPDFEmbeddedFileDocumentHelper efdh(q);
    efdh.removeEmbeddedFile("pages.json");
    efdh.removeEmbeddedFile("pages.sig");
    embed(q, {{"evidence.json", ev}, {"evidence.sig", receipt::sign_evidence(ev, kp)}});
    const std::string pdf = written(q);
    auto c = receipt::check_receipt(pdf, kp, model::Locale::en);
    CHECK(c.valid);
    CHECK(c.pages == receipt::PageBinding::absent);
    CHECK(c.not_checked[1].find("predates page binding") != std::string::npos);
  }
}

TEST_CASE("the PDF reader's work grows linearly with crafted files", "[receipt][verify]")
{
  // Objects without endobj and no cross-reference table: the reader rebuilds the table
  // (the hand-written reader of before scanned the rest of the file for each object:
  // 40,000 objects took 9.4 s). Its work is measured in bytes read, not in time.
  auto crafted = [](int n) {
    std::string pdf = "%PDF-1.4\n";
    for (int i = 1; i <= n; ++i) {
      pdf += fmt::format("{} 0 obj\n<< /Type /Filespec /UF (f{}) /EF << /F {} 0 R >> >>\n", i, i,
                         i + 1);
    }
    pdf += "trailer\n<< /Root 1 0 R /Size " + std::to_string(n + 1) + " >>\n%%EOF\n";
    return pdf;
  };
  const std::string small = crafted(10000);
  const std::string big = crafted(40000);
  auto a = receipt::read_pdf(small);
  auto b = receipt::read_pdf(big);
  std::size_t read_small = a ? a->bytes_read : 0;
  std::size_t read_big = b ? b->bytes_read : 0;
  // Failing is fine; the work is what matters. read_pdf reports bytes read only on success,
  // so measure through a file that reads: the same objects behind a valid catalog.
  if (!a || !b) {
    auto with_catalog = [&](int n) {
      std::string pdf = crafted(n);
      pdf.insert(9, fmt::format("{} 0 obj\n<< /Type /Catalog /Pages {} 0 R >>\nendobj\n{} 0 obj\n"
                                "<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n",
                                n + 2, n + 3, n + 3));
      auto at = pdf.find("/Root 1 0 R");
      pdf.replace(at, 11, fmt::format("/Root {} 0 R", n + 2));
      return pdf;
    };
    a = receipt::read_pdf(with_catalog(10000));
    b = receipt::read_pdf(with_catalog(40000));
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    read_small = a->bytes_read;
    read_big = b->bytes_read;
  }
  REQUIRE(read_small > 0);
  INFO("bytes read: " << read_small << " for 10,000 objects, " << read_big << " for 40,000");
  // Four times the objects: about four times the reading (quadratic would be sixteen).
  CHECK(read_big < 6 * read_small);
  CHECK(read_big >= 2 * big.size() / 4); // it did read the file
}

TEST_CASE("receipt files: a planted symlink is replaced, never followed", "[receipt]")
{
  TempDir dir;
  {
    std::ofstream(dir.path / "outside") << "untouched";
  }
  fs::create_symlink(dir.path / "outside", dir.path / "r.pdf");
  const mode_t old_mask = ::umask(0);
  auto st = receipt::write_file_atomic((dir.path / "r.pdf").string(), "PDF");
  ::umask(old_mask);
  REQUIRE(st.ok());
  struct stat sb;
  REQUIRE(::lstat((dir.path / "r.pdf").c_str(), &sb) == 0);
  CHECK(S_ISREG(sb.st_mode));
  CHECK((sb.st_mode & 0777) == 0600);
  std::ifstream in(dir.path / "outside");
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "untouched");
}

TEST_CASE("the visible timeline stays bounded whatever the history", "[receipt]")
{
  TempDir dir;
  auto kp = keys(dir.path / "k");
  receipt::ReceiptOptions o;
  o.organisation = "Région Exemple";
  o.issued_at = k_t0;
  o.timezone = "Europe/Paris";
  const auto x = exchange(20000);
  const auto rows = receipt::timeline_rows(x, "d1", model::Locale::fr, o.timezone);
  // sent, delivered, read, 50 downloads, the summary, the last download
  REQUIRE(rows.size() == 55);
  CHECK(rows[53].event == nullptr);
  CHECK(rows[53].sentence.rfind("… et 19 949 autres téléchargements du ", 0) == 0);
  REQUIRE(rows[54].event != nullptr);
  CHECK(rows[54].event == &x.events.back());
  auto huge = receipt::make_receipt(x, o, kp);
  auto some = receipt::make_receipt(exchange(52), o, kp);
  REQUIRE(huge.ok());
  REQUIRE(some.ok());
  CHECK(huge->pages == some->pages);
  CHECK(huge->pages <= 4);
}
