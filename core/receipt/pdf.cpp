#include "core/receipt/pdf.hpp"

#include "core/receipt/errc.hpp"
#include "core/receipt/font.hpp"
#include "core/receipt/pdf_finish.hpp"
#include "core/receipt/pdf_reader.hpp"
#include "core/receipt/signed_evidence.hpp"
#include "core/util/crypto.hpp"
#include "core/util/gobject_ptr.hpp"

#include <fmt/format.h>
#include <glib.h>
// libharu's public API only: with HPDF_SHARED, hpdf.h declares every handle as an opaque
// pointer, so nothing here can reach the library's internal structures (pdf_finish.hpp
// does on libharu's output what its public API cannot).
#define HPDF_SHARED
#include <hpdf.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

namespace pli::receipt {

namespace {

constexpr float k_page_w = 595.276F; // A4
constexpr float k_page_h = 841.89F;
constexpr float k_left = 50;
constexpr float k_right = k_page_w - 50;
constexpr float k_top = k_page_h - 50;
constexpr float k_bottom = 60; // above the footer

// HPDF_STREAM_EOF, libharu's documented end-of-stream status: its header, hpdf_error.h,
// also declares the library's internal error structure, which HPDF_SHARED keeps opaque.
constexpr HPDF_STATUS k_hpdf_stream_eof = 0x1058;

// libharu's error handler records; our code checks and returns (an error handler must not
// throw through the C library).
struct ErrorState
{
  HPDF_STATUS error = 0;
  HPDF_STATUS detail = 0;
};

extern "C" void HPDF_STDCALL on_hpdf_error(HPDF_STATUS error_no, HPDF_STATUS detail_no,
                                           void* user_data)
{
  auto* st = static_cast<ErrorState*>(user_data);
  if (st->error == 0) {
    st->error = error_no;
    st->detail = detail_no;
  }
}

struct DocDeleter
{
  void operator()(HPDF_Doc d) const { HPDF_Free(d); }
};
using DocPtr = std::unique_ptr<std::remove_pointer_t<HPDF_Doc>, DocDeleter>;

// Valid UTF-8 of the BMP without control characters (libharu drops the rest silently).
std::string printable(const std::string& in)
{
  std::string s = in;
  if (!g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr)) {
    const util::GCharPtr valid(g_utf8_make_valid(s.data(), static_cast<gssize>(s.size())));
    s = valid.get();
  }
  std::string out;
  out.reserve(s.size());
  for (const gchar* p = s.c_str(); *p != '\0'; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (c == '\n') {
      out.push_back('\n');
      continue;
    }
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) {
      c = ' ';
    } else if (c > 0xffff) {
      c = '?';
    }
    char buf[6];
    out.append(buf, static_cast<std::size_t>(g_unichar_to_utf8(c, buf)));
  }
  return out;
}

class Writer
{
public:
  Writer(HPDF_Doc pdf, HPDF_Font font) : m_pdf(pdf), m_font(font) {}

  void new_page()
  {
    m_page = HPDF_AddPage(m_pdf);
    HPDF_Page_SetWidth(m_page, k_page_w);
    HPDF_Page_SetHeight(m_page, k_page_h);
    m_pages.push_back(m_page);
    m_y = k_top;
  }

  // Breaks `text` into lines of at most `width` points at `size`.
  std::vector<std::string> wrap(const std::string& text, float width, float size)
  {
    HPDF_Page_SetFontAndSize(m_page, m_font, size);
    std::vector<std::string> lines;
    std::string all = printable(text);
    std::size_t start = 0;
    while (start <= all.size()) {
      auto nl = all.find('\n', start);
      std::string para = all.substr(start, nl == std::string::npos ? nl : nl - start);
      const char* p = para.c_str();
      if (*p == '\0') {
        lines.emplace_back();
      }
      while (*p != '\0') {
        HPDF_REAL real = 0;
        HPDF_UINT n = HPDF_Page_MeasureText(m_page, p, width, HPDF_TRUE, &real);
        if (n == 0) {
          n = HPDF_Page_MeasureText(m_page, p, width, HPDF_FALSE, &real);
        }
        std::size_t len = std::max<std::size_t>(n, 1);
        while (len < std::strlen(p) && (static_cast<unsigned char>(p[len]) & 0xC0) == 0x80) {
          ++len; // never split a character
        }
        std::string line(p, len);
        while (!line.empty() && line.back() == ' ') {
          line.pop_back();
        }
        lines.push_back(line);
        p += len;
        while (*p == ' ') {
          ++p;
        }
      }
      if (nl == std::string::npos) {
        break;
      }
      start = nl + 1;
    }
    return lines;
  }

  void text(float x, float y, const std::string& s, float size)
  {
    note(s);
    HPDF_Page_BeginText(m_page);
    HPDF_Page_SetFontAndSize(m_page, m_font, size);
    HPDF_Page_TextOut(m_page, x, y, s.c_str());
    HPDF_Page_EndText(m_page);
  }

  void rule(float y, float gray = 0.6F, float x0 = k_left, float x1 = k_right)
  {
    HPDF_Page_SetGrayStroke(m_page, gray);
    HPDF_Page_SetLineWidth(m_page, 0.5F);
    HPDF_Page_MoveTo(m_page, x0, y);
    HPDF_Page_LineTo(m_page, x1, y);
    HPDF_Page_Stroke(m_page);
  }

  // Makes room for `h` points, starting a new page when needed. Returns true on a new page.
  bool ensure(float h)
  {
    if (m_y - h < k_bottom) {
      new_page();
      return true;
    }
    return false;
  }

  void heading(const std::string& s)
  {
    ensure(40);
    m_y -= 14;
    text(k_left, m_y, printable(s), 12);
    m_y -= 5;
    rule(m_y);
    m_y -= 12;
  }

  // "Label      value (wrapped)"
  void field(const std::string& label, const std::string& value, float value_size = 9.5F)
  {
    constexpr float size = 9.5F, lead = 12.5F, vx = k_left + 140;
    auto lines = wrap(value, k_right - vx, value_size);
    ensure(lead * static_cast<float>(std::max<std::size_t>(lines.size(), 1)));
    text(k_left, m_y, printable(label), size);
    for (const auto& l : lines) {
      text(vx, m_y, l, value_size);
      m_y -= lead;
    }
    if (lines.empty()) {
      m_y -= lead;
    }
  }

  void paragraph(const std::string& s, float size = 9)
  {
    const float lead = size * 1.35F;
    for (const auto& l : wrap(s, k_right - k_left, size)) {
      ensure(lead);
      text(k_left, m_y, l, size);
      m_y -= lead;
    }
  }

  void space(float h) { m_y -= h; }

  struct Column
  {
    std::string title;
    float width;
  };

  void table(const std::vector<Column>& cols, const std::vector<std::vector<std::string>>& rows)
  {
    constexpr float size = 8.5F, lead = 11, pad = 4;
    auto header = [&] {
      ensure(lead + 2 * pad + 20);
      float x = k_left;
      for (const auto& c : cols) {
        text(x + 2, m_y - lead + 2, printable(c.title), size);
        x += c.width;
      }
      m_y -= lead + pad;
      rule(m_y, 0.2F);
      m_y -= pad;
    };
    header();
    for (const auto& row : rows) {
      std::vector<std::vector<std::string>> cells;
      std::size_t n = 1;
      for (std::size_t i = 0; i < cols.size(); ++i) {
        cells.push_back(wrap(row[i], cols[i].width - 6, size));
        n = std::max(n, cells.back().size());
      }
      const float h = static_cast<float>(n) * lead + pad;
      if (ensure(h)) {
        header();
      }
      float x = k_left;
      for (std::size_t i = 0; i < cols.size(); ++i) {
        float y = m_y - lead + 2;
        for (const auto& l : cells[i]) {
          text(x + 2, y, l, size);
          y -= lead;
        }
        x += cols[i].width;
      }
      m_y -= h;
      rule(m_y + pad / 2, 0.8F);
    }
  }

  // Notes text drawn outside text() (the footers).
  void note(const std::string& s) { scan_text(s, m_scan); }

  const std::vector<HPDF_Page>& pages() const { return m_pages; }
  HPDF_Font font() const { return m_font; }
  // The characters drawn so far.
  const TextScan& scan() const { return m_scan; }

private:
  HPDF_Doc m_pdf;
  HPDF_Font m_font;
  TextScan m_scan;
  HPDF_Page m_page = nullptr;
  std::vector<HPDF_Page> m_pages;
  float m_y = k_top;
};

// The compiled-in subset of DejaVuSans (font.hpp) as a file libharu can open by name
// (HPDF_LoadTTFontFromFile, its public way to load a TrueType font): a memory file of this
// process, written once. Empty when it cannot be made.
const std::string& subset_font_path()
{
  static const std::string path = [] {
    const std::string_view data = subset_font_data();
    const int fd = ::memfd_create("pli-receipt-font", MFD_CLOEXEC);
    if (fd < 0) {
      return std::string();
    }
    for (std::size_t done = 0; done < data.size();) {
      const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n <= 0 && errno != EINTR) {
        ::close(fd);
        return std::string();
      }
      done += n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    return fmt::format("/proc/self/fd/{}", fd); // kept open for the process's life
  }();
  return path;
}

enum class FontSource
{
  subset, // the compiled-in subset (font.hpp)
  file    // ReceiptOptions::font_path, the whole font
};

std::string human_size(std::uint64_t n, bool fr)
{
  return fmt::format("{} {}", n, fr ? "octets" : "bytes");
}

} // namespace

namespace {

// 0600 whatever the umask: a receipt holds the reader's IP address and browser. The temporary
// file is never a planted one, and the rename replaces whatever is at the path, a symlink
// included, without following it (util/durable_file.hpp).
util::WriteOptions receipt_file(util::Sync sync)
{
  util::WriteOptions options;
  options.mode = 0600;
  options.sync = sync;
  return options;
}

util::Error receipt_error(const util::Error& e)
{
  return util::Error{Errc::io, e.message};
}

} // namespace

util::Status FileBatch::add(const std::string& path, const std::string& data)
{
  auto file = util::write_temp(path, data, receipt_file(util::Sync::none));
  if (!file) {
    return receipt_error(file.error());
  }
  m_pending.push_back(std::move(file.value()));
  return util::ok_status();
}

util::Status FileBatch::commit()
{
  std::vector<std::string> dirs;
  for (const auto& file : m_pending) {
    if (std::find(dirs.begin(), dirs.end(), util::dir_of(file.path())) == dirs.end()) {
      dirs.push_back(util::dir_of(file.path()));
    }
  }
  // Each directory's file system flushed once (syncfs, or fsync for a directory's entries):
  // first every temporary file's data, then, after the renames, the renames themselves.
  auto sync_dirs = [&](util::FlushScope scope) -> util::Status {
    for (const auto& d : dirs) {
      if (auto st = util::sync_dir(d, scope); !st) {
        return receipt_error(st.error());
      }
    }
    return util::ok_status();
  };
  if (auto st = sync_dirs(util::FlushScope::file_system); !st) {
    return st;
  }
  while (!m_pending.empty()) {
    if (auto st = m_pending.back().commit(); !st) {
      m_pending.pop_back();
      return receipt_error(st.error());
    }
    m_pending.pop_back();
  }
  return sync_dirs(util::FlushScope::directory);
}

util::Status write_file_atomic(const std::string& path, const std::string& data)
{
  if (auto st = util::write_file(path, data, receipt_file(util::Sync::file_and_dir)); !st) {
    return receipt_error(st.error());
  }
  return util::ok_status();
}

namespace {

// Draws the receipt (its evidence, signature and code already in `r`) with the font from
// `source` and fills r.pdf and r.pages. With the subset, `uncovered` tells whether some text
// needs the whole font (the PDF is complete either way, with blanks for those characters).
util::Status render(const Exchange& x, const ReceiptOptions& o, const KeyPair& key,
                    FontSource source, Receipt& r, bool& uncovered)
{
  const bool fr = o.locale == model::Locale::fr;
  auto L = [fr](const char* f, const char* e) { return std::string(fr ? f : e); };
  const auto human = [&](util::Micros t) {
    return t == 0 ? std::string() : util::format_human(t, o.timezone);
  };

  ErrorState err;
  DocPtr doc(HPDF_New(on_hpdf_error, &err));
  if (!doc) {
    return util::Error{Errc::render, "libharu could not create a document"};
  }
  HPDF_Doc pdf = doc.get();
  // The font's streams (its file, CIDToGIDMap, ToUnicode) are compressed by finish_pdf,
  // after the map is cut: compressing libharu's 128 KB map, then inflating it to cut it, was
  // a third of a receipt's time.
  HPDF_SetCompressionMode(pdf, HPDF_COMP_TEXT | HPDF_COMP_IMAGE);
  HPDF_UseUTFEncodings(pdf);
  HPDF_SetCurrentEncoder(pdf, "UTF-8");
  const std::string font_label =
      source == FontSource::subset ? std::string("DejaVuSans (embedded subset)") : o.font_path;
  const std::string& font_file = source == FontSource::subset ? subset_font_path() : o.font_path;
  const char* font_name =
      font_file.empty() ? nullptr : HPDF_LoadTTFontFromFile(pdf, font_file.c_str(), HPDF_TRUE);
  if (font_name == nullptr) {
    return util::Error{Errc::render, fmt::format("cannot load the font {} (libharu error 0x{:04X})",
                                                 font_label, err.error)};
  }
  HPDF_Font font = HPDF_GetFont(pdf, font_name, "UTF-8");
  if (font == nullptr || err.error != 0) {
    return util::Error{Errc::render, fmt::format("cannot use the font {} (libharu error 0x{:04X})",
                                                 font_label, err.error)};
  }
  const std::string title = L("Accusé de réception", "Acknowledgment of receipt");
  HPDF_SetInfoAttr(pdf, HPDF_INFO_TITLE, title.c_str());
  HPDF_SetInfoAttr(pdf, HPDF_INFO_AUTHOR, printable(o.organisation).c_str());
  HPDF_SetInfoAttr(pdf, HPDF_INFO_CREATOR, "pli");
  HPDF_SetInfoAttr(pdf, HPDF_INFO_SUBJECT, printable(x.message.subject()).c_str());

  const auto& m = x.message;
  const auto& d = x.delivery;
  Writer w(pdf, font);
  w.new_page();
  for (const auto& l : w.wrap(o.organisation, k_right - k_left, 12)) {
    w.text(k_left, k_top, l, 12);
    break;
  }
  w.space(34);
  w.text(k_left, k_top - 34, title, 20);
  w.space(18);
  w.paragraph(fmt::format("{} {}", L("Émis le", "Issued on"), human(o.issued_at)), 9);
  w.space(4);

  w.heading(L("Courrier", "Mail"));
  w.field(L("Type de courrier", "Type"),
          std::string(model::label(static_cast<model::MessageType>(m.type()), o.locale)));
  w.field(L("Objet", "Subject"), m.subject());
  w.field(L("Expéditeur", "Sender"), sender_display(m) == m.sender()
                                         ? m.sender()
                                         : sender_display(m) + " (" + m.sender() + ")");
  w.field(L("Destinataire", "Recipient"), d.recipient());
  w.field(L("Envoyé le", "Sent on"), human(m.sent_at()));
  w.field(L("Mode d'envoi", "Sending mode"),
          static_cast<model::Mode>(m.mode()) == model::Mode::ar
              ? L("Avec accusé de réception (lien personnel)", "With receipt (personal link)")
              : L("Simple (suivi de la remise)", "Simple (delivery tracked)"));
  w.field(L("Réponse autorisée", "Reply allowed"),
          m.reply_allowed() ? L("oui", "yes") : L("non", "no"));
  w.field(L("Statut", "Status"),
          std::string(model::label(static_cast<model::Status>(d.status()), o.locale)));
  if (!m.message_id().empty()) {
    w.field("Message-ID", "<" + m.message_id() + ">");
  }
  w.field(L("Référence pli", "pli reference"), m.id() + " / " + d.id());

  if (!m.consultation().empty()) {
    w.heading("Consultation");
    w.field(L("Référence", "Reference"), m.consultation());
    if (x.consultation) {
      if (!x.consultation->title().empty()) {
        w.field(L("Intitulé", "Title"), x.consultation->title());
      }
      if (!x.consultation->object().empty()) {
        w.field(L("Objet", "Object"), x.consultation->object());
      }
      if (x.consultation->deadline() != 0) {
        w.field(L("Date limite de remise des plis", "Tender deadline"),
                human(x.consultation->deadline()));
      }
    }
  }

  w.heading(L("Suivi du courrier", "Timeline"));
  std::vector<std::vector<std::string>> rows;
  for (const auto& row : timeline_rows(x, d.id(), o.locale, o.timezone)) { // bounded
    rows.push_back({row.event != nullptr ? human(row.at) : std::string(),
                    row.sentence + (row.evidence.empty() ? "" : "\n" + row.evidence)});
  }
  if (rows.empty()) {
    w.paragraph(L("Aucun événement enregistré.", "No event recorded."));
  } else {
    w.table({{L("Date et heure", "Date and time"), 112},
             {L("Événement et preuve", "Event and evidence"), k_right - k_left - 112}},
            rows);
  }

  w.heading(L("Empreintes SHA-256", "SHA-256 fingerprints"));
  w.field(L("Message original", "Original message"),
          m.original_sha256() + "\n" + human_size(m.original_size(), fr), 8);
  for (const auto& a : m.attachments()) {
    w.field(L("Pièce jointe", "Attachment"),
            a.name() + " (" + human_size(a.size(), fr) + ")\n" + a.sha256(), 8);
  }

  w.heading(L("Vérification", "Verification"));
  w.field(L("Code de vérification", "Verification code"), r.code);
  w.field(L("Clé de signature", "Signing key"), "Ed25519 " + key.kid);
  w.field(L("Chaîne des événements", "Event chain"),
          x.events.empty() ? std::string("-") : x.events.back().hash(), 8);
  w.space(4);
  w.paragraph(L("Ce document contient en pièces jointes les données de preuve (evidence.json) et "
                "leur signature Ed25519 (evidence.sig). Seules ces données signées font foi : "
                "« pli verify FICHIER.pdf » vérifie la signature et affiche le même code de "
                "vérification. Chaque événement porte l'empreinte du précédent.",
                "This document carries the evidence (evidence.json) and its Ed25519 signature "
                "(evidence.sig) as attached files. Only the signed data is authoritative: "
                "\"pli verify FILE.pdf\" checks the signature and prints the same verification "
                "code. Each event holds the hash of the previous one."),
              8.5F);

  // Footers, now that the page count is known.
  const auto& pages = w.pages();
  for (std::size_t i = 0; i < pages.size(); ++i) {
    HPDF_Page p = pages[i];
    std::string left = printable(o.organisation) + " — " + title + " — " + r.code;
    w.note(left);
    HPDF_Page_BeginText(p);
    HPDF_Page_SetFontAndSize(p, font, 7.5F);
    HPDF_Page_TextOut(p, k_left, 30, left.c_str());
    if (pages.size() > 1) {
      std::string num = fmt::format("Page {} / {}", i + 1, pages.size());
      w.note(num);
      HPDF_Page_TextOut(p, k_right - HPDF_Page_TextWidth(p, num.c_str()), 30, num.c_str());
    }
    HPDF_Page_EndText(p);
  }
  r.pages = static_cast<int>(pages.size());
  uncovered = !w.scan().subset_covers;
  if (err.error != 0) {
    return util::Error{Errc::render,
                       fmt::format("libharu error 0x{:04X} (detail {}) while building "
                                   "the receipt",
                                   err.error, err.detail)};
  }
  if (HPDF_SaveToStream(pdf) != HPDF_OK) {
    return util::Error{Errc::render,
                       fmt::format("cannot write the receipt (libharu error 0x{:04X})", err.error)};
  }
  HPDF_ResetStream(pdf);
  std::string out;
  for (;;) {
    HPDF_BYTE buf[65536];
    HPDF_UINT32 n = sizeof buf;
    HPDF_STATUS rc = HPDF_ReadFromStream(pdf, buf, &n);
    out.append(reinterpret_cast<const char*>(buf), n);
    if (rc == k_hpdf_stream_eof) {
      break;
    }
    if (rc != HPDF_OK) {
      return util::Error{Errc::render,
                         fmt::format("cannot read the receipt back (libharu error 0x{:04X})", rc)};
    }
  }
  // The page binding: each page's content as `pli verify` reads it (pdf_reader.hpp),
  // hashed, then signed; then the evidence embedded, the font finished (pdf_finish.hpp).
  auto drawn = read_pdf(out);
  if (!drawn) {
    return util::Error{Errc::render,
                       fmt::format("cannot read libharu's PDF back: {}", drawn.error().message)};
  }
  r.binding = pages_json(r.evidence, drawn->page_content_sha256);
  r.binding_signature = sign_document("pages.json", r.binding, key);
  PdfFinish finish;
  finish.max_code_point = w.scan().max_code_point;
  finish.font_tag = source == FontSource::subset ? "PLIDJV" : "";
  finish.files = {{"evidence.json", "application/json", r.evidence},
                  {"evidence.sig", "application/json", r.signature},
                  {"pages.json", "application/json", r.binding},
                  {"pages.sig", "application/json", r.binding_signature}};
  auto finished = finish_pdf(out, finish);
  if (!finished) {
    return finished.error();
  }
  r.pdf = std::move(*finished);
  return util::ok_status();
}

} // namespace

util::Result<Receipt> make_receipt(const Exchange& x, const ReceiptOptions& o, const KeyPair& key)
{
  Receipt r;
  r.evidence = evidence_json(x, EvidenceContext{o.organisation, o.timezone, o.issued_at});
  r.signature = sign_evidence(r.evidence, key);
  r.code = verification_code(r.evidence);
  bool uncovered = true;
  util::Status st = util::ok_status();
  if (o.font == FontChoice::subset_when_covered) {
    st = render(x, o, key, FontSource::subset, r, uncovered);
  }
  if (st && uncovered) {
    r.whole_font = true;
    st = render(x, o, key, FontSource::file, r, uncovered);
  }
  if (!st) {
    return st.error();
  }
  return r;
}

} // namespace pli::receipt
