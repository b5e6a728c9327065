#include "core/receipt/pdf.hpp"

#include "core/receipt/errc.hpp"
#include "core/receipt/font.hpp"
#include "core/receipt/signed_evidence.hpp"
#include "core/util/crypto.hpp"
#include "core/util/gobject_ptr.hpp"

#include <fmt/format.h>
#include <glib.h>
#include <hpdf.h>
#include <hpdf_catalog.h>
#include <hpdf_doc.h>
#include <hpdf_encoder.h>
#include <hpdf_font.h>
#include <hpdf_fontdef.h>
#include <hpdf_namedict.h>
#include <hpdf_objects.h>
#include <hpdf_pages.h>
#include <hpdf_streams.h>

#include <fcntl.h>
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

// libharu's error handler records; our code checks and returns (LIBHARU-NOTES
// §5).
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
using DocPtr = std::unique_ptr<HPDF_Doc_Rec, DocDeleter>;

// Valid UTF-8 of the BMP without control characters (libharu drops the rest
// silently).
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

  // Makes room for `h` points, starting a new page when needed. Returns true on
  // a new page.
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

// Embeds `data` as an uncompressed file named `name` (LIBHARU-NOTES §2, built
// directly with libharu's exported object functions instead of HPDF_AttachFile,
// which needs a path and writes it into the PDF).
bool embed_file(HPDF_Doc pdf, const std::string& name, const std::string& media_type,
                const std::string& data)
{
  HPDF_NameDict names = HPDF_Catalog_GetNames(pdf->catalog);
  if (names == nullptr) {
    names = HPDF_NameDict_New(pdf->mmgr, pdf->xref);
    if (names == nullptr || HPDF_Catalog_SetNames(pdf->catalog, names) != HPDF_OK) {
      return false;
    }
  }
  HPDF_NameTree tree = HPDF_NameDict_GetNameTree(names, HPDF_NAME_EMBEDDED_FILES);
  if (tree == nullptr) {
    tree = HPDF_NameTree_New(pdf->mmgr, pdf->xref);
    if (tree == nullptr ||
        HPDF_NameDict_SetNameTree(names, HPDF_NAME_EMBEDDED_FILES, tree) != HPDF_OK) {
      return false;
    }
  }
  HPDF_Dict stream = HPDF_DictStream_New(pdf->mmgr, pdf->xref);
  HPDF_Dict params = HPDF_Dict_New(pdf->mmgr);
  HPDF_Dict ef = HPDF_Dict_New(pdf->mmgr);
  HPDF_Dict spec = HPDF_Dict_New(pdf->mmgr);
  if (stream == nullptr || params == nullptr || ef == nullptr || spec == nullptr ||
      HPDF_Xref_Add(pdf->xref, spec) != HPDF_OK) {
    return false;
  }
  stream->filter = HPDF_STREAM_FILTER_NONE;
  HPDF_STATUS rc =
      HPDF_Stream_Write(stream->stream, reinterpret_cast<const HPDF_BYTE*>(data.data()),
                        static_cast<HPDF_UINT>(data.size()));
  rc |= HPDF_Dict_AddName(stream, "Type", "EmbeddedFile");
  rc |= HPDF_Dict_AddName(stream, "Subtype", media_type.c_str());
  rc |= HPDF_Dict_AddNumber(params, "Size", static_cast<HPDF_INT32>(data.size()));
  rc |= HPDF_Dict_Add(stream, "Params", params);
  rc |= HPDF_Dict_Add(ef, "F", stream);
  rc |= HPDF_Dict_AddName(spec, "Type", "Filespec");
  rc |= HPDF_Dict_Add(spec, "F", HPDF_String_New(pdf->mmgr, name.c_str(), nullptr));
  rc |= HPDF_Dict_Add(spec, "UF", HPDF_String_New(pdf->mmgr, name.c_str(), nullptr));
  rc |= HPDF_Dict_Add(spec, "EF", ef);
  // Appended to the tree's /Names array (callers embed in name order):
  // HPDF_NameTree_Add puts a key that sorts after two others without its value
  // (libharu 2.3.0).
  auto* array = static_cast<HPDF_Array>(HPDF_Dict_GetItem(tree, "Names", HPDF_OCLASS_ARRAY));
  if (array == nullptr) {
    return false;
  }
  rc |= HPDF_Array_Add(array, HPDF_String_New(pdf->mmgr, name.c_str(), nullptr));
  rc |= HPDF_Array_Add(array, spec);
  return rc == HPDF_OK;
}

// libharu writes the UTF-8 encoder's CMap as the font's /ToUnicode (a
// `begincidrange` that extractors reject: LIBHARU-NOTES §1). Codes are Unicode
// code points (Identity-H with the UTF-8 encoder), so the right ToUnicode is
// the identity, here up to the block of `max_code_point` (a document has no
// code above the highest character drawn).
std::string identity_to_unicode(char32_t max_code_point)
{
  std::vector<int> highs;
  for (int hi = 0; hi <= static_cast<int>(std::min<char32_t>(max_code_point, 0xFFFF) >> 8); ++hi) {
    if (hi < 0xD8 || hi > 0xDF) { // no surrogates
      highs.push_back(hi);
    }
  }
  std::string c = "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
                  "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> "
                  "def\n"
                  "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
                  "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n";
  for (std::size_t i = 0; i < highs.size(); i += 100) {
    std::size_t n = std::min<std::size_t>(100, highs.size() - i);
    c += fmt::format("{} beginbfrange\n", n);
    for (std::size_t j = i; j < i + n; ++j) {
      c += fmt::format("<{0:02X}00> <{0:02X}FF> <{0:02X}00>\n", highs[j]);
    }
    c += "endbfrange\n";
  }
  c += "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n";
  return c;
}

// Replaces the font's /ToUnicode stream content. Returns false when libharu's
// font has none.
bool fix_to_unicode(HPDF_Doc pdf, HPDF_Font font, char32_t max_code_point)
{
  auto* to_unicode = static_cast<HPDF_Dict>(
      HPDF_Dict_GetItem(reinterpret_cast<HPDF_Dict>(font), "ToUnicode", HPDF_OCLASS_DICT));
  if (to_unicode == nullptr || to_unicode->stream == nullptr) {
    return false;
  }
  const std::string cmap = identity_to_unicode(max_code_point);
  HPDF_Stream fresh = HPDF_MemStream_New(pdf->mmgr, 4096);
  if (fresh == nullptr || HPDF_Stream_Write(fresh, reinterpret_cast<const HPDF_BYTE*>(cmap.data()),
                                            static_cast<HPDF_UINT>(cmap.size())) != HPDF_OK) {
    return false;
  }
  HPDF_Stream_Free(to_unicode->stream);
  to_unicode->stream = fresh;
  return true;
}

// Loads the compiled-in subset of DejaVuSans (font.hpp) into `pdf`, as
// HPDF_LoadTTFontFromFile does from a file. Returns the font's name, nullptr on
// error.
const char* load_subset_font(HPDF_Doc pdf)
{
  const std::string_view data = subset_font_data();
  HPDF_Stream stream = HPDF_MemStream_New(pdf->mmgr, static_cast<HPDF_UINT>(data.size()));
  if (stream == nullptr ||
      HPDF_Stream_Write(stream, reinterpret_cast<const HPDF_BYTE*>(data.data()),
                        static_cast<HPDF_UINT>(data.size())) != HPDF_OK) {
    if (stream != nullptr) {
      HPDF_Stream_Free(stream);
    }
    return nullptr;
  }
  HPDF_FontDef def = HPDF_TTFontDef_Load(pdf->mmgr, stream, HPDF_TRUE); // owns the stream
  if (def == nullptr) {
    return nullptr;
  }
  if (HPDF_Doc_RegisterFontDef(pdf, def) != HPDF_OK) {
    HPDF_FontDef_Free(def);
    return nullptr;
  }
  char tag[] = "PLIDJV"; // the subset tag of the PDF font name: PLIDJV+DejaVuSans,Book
  HPDF_TTFontDef_SetTagName(def, tag);
  return def->base_font;
}

// libharu 2.3.0 builds a TrueType Type0 font (HPDF_GetFont) by looking up the
// glyph of each of the 65,536 codes of its UTF-8 encoder, a linear search of
// the font's cmap each: most of a receipt's cost. When the encoder's
// `to_unicode_fn` is libharu's default, it looks up only the codes of the
// encoder's `cid_map` instead. NarrowedEncoder fills that map with the subset's
// code points (CID = Unicode, as the UTF-8 encoder writes them) for the time of
// HPDF_GetFont, then puts the UTF-8 encoder back as it was.
// XXX: libharu internals (hpdf_encoder.h, hpdf_font_cid.c of 2.3.0, Debian 12's
// version); receipt_font tests check the text and the glyphs drawn against the
// whole font.
class NarrowedEncoder
{
public:
  explicit NarrowedEncoder(HPDF_Encoder encoder) : m_encoder(encoder)
  {
    if (m_encoder == nullptr || m_encoder->type != HPDF_ENCODER_TYPE_DOUBLE_BYTE) {
      m_encoder = nullptr;
      return;
    }
    auto* attr = static_cast<HPDF_CMapEncoderAttr>(m_encoder->attr);
    m_saved_fn = m_encoder->to_unicode_fn;
    // Row 0 of cid_map is the UTF-8 encoder's parsing state: the codes go from
    // row 1 on.
    std::size_t k = 256;
    for (const auto& r : subset_font_ranges()) {
      for (char32_t c = r.first; c <= r.last && c <= 0xFFFF && k < 256 * 256; ++c, ++k) {
        const std::size_t i = k / 256, j = k % 256;
        m_saved.push_back({attr->cid_map[i][j], attr->unicode_map[i][j]});
        attr->cid_map[i][j] = static_cast<HPDF_UINT16>(c);
        attr->unicode_map[i][j] = static_cast<HPDF_UNICODE>(c);
      }
    }
    m_encoder->to_unicode_fn = HPDF_CMapEncoder_ToUnicode;
  }
  ~NarrowedEncoder()
  {
    if (m_encoder == nullptr) {
      return;
    }
    auto* attr = static_cast<HPDF_CMapEncoderAttr>(m_encoder->attr);
    for (std::size_t n = 0; n < m_saved.size(); ++n) {
      const std::size_t k = 256 + n;
      attr->cid_map[k / 256][k % 256] = m_saved[n].first;
      attr->unicode_map[k / 256][k % 256] = m_saved[n].second;
    }
    m_encoder->to_unicode_fn = m_saved_fn;
  }
  NarrowedEncoder(const NarrowedEncoder&) = delete;
  NarrowedEncoder& operator=(const NarrowedEncoder&) = delete;

private:
  HPDF_Encoder m_encoder;
  HPDF_Encoder_ToUnicode_Func m_saved_fn = nullptr;
  std::vector<std::pair<HPDF_UINT16, HPDF_UNICODE>> m_saved;
};

// libharu's CIDToGIDMap covers every CID up to 0xFFFF (128 KB to compress into
// each receipt); CIDs are the characters' code points, so the map up to the
// highest character drawn is the same map for this document. Returns false when
// the font has no map.
bool trim_cid_to_gid_map(HPDF_Doc pdf, HPDF_Font font, char32_t max_code_point)
{
  auto* attr = static_cast<HPDF_FontAttr>(font->attr);
  if (attr == nullptr || attr->map_stream == nullptr || attr->map_stream->stream == nullptr) {
    return false;
  }
  HPDF_Stream old = attr->map_stream->stream;
  const HPDF_UINT32 want = 2 * (static_cast<HPDF_UINT32>(max_code_point) + 1);
  if (want >= HPDF_Stream_Size(old)) {
    return true;
  }
  std::string prefix(want, '\0');
  HPDF_UINT len = want;
  if (HPDF_Stream_Seek(old, 0, HPDF_SEEK_SET) != HPDF_OK ||
      HPDF_Stream_Read(old, reinterpret_cast<HPDF_BYTE*>(prefix.data()), &len) != HPDF_OK ||
      len != want) {
    return false;
  }
  HPDF_Stream fresh = HPDF_MemStream_New(pdf->mmgr, want);
  if (fresh == nullptr ||
      HPDF_Stream_Write(fresh, reinterpret_cast<const HPDF_BYTE*>(prefix.data()), want) !=
          HPDF_OK) {
    return false;
  }
  HPDF_Stream_Free(old);
  attr->map_stream->stream = fresh;
  return true;
}

// The bytes of a libharu memory stream.
std::optional<std::string> stream_bytes(HPDF_Stream st)
{
  if (st == nullptr) {
    return std::nullopt;
  }
  HPDF_UINT32 size = HPDF_Stream_Size(st);
  std::string out(size, '\0');
  HPDF_UINT len = size;
  if (HPDF_Stream_Seek(st, 0, HPDF_SEEK_SET) != HPDF_OK) {
    return std::nullopt;
  }
  if (size == 0) {
    return out;
  }
  const HPDF_STATUS rc = HPDF_Stream_Read(st, reinterpret_cast<HPDF_BYTE*>(out.data()), &len);
  if ((rc != HPDF_OK && rc != HPDF_STREAM_EOF) || len != size) {
    return std::nullopt;
  }
  return out;
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

std::string dir_of(const std::string& path)
{
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// Writes `data` to a new temporary file beside `path`, fsynced when `sync`;
// returns its name. 0600 whatever the umask: a receipt holds the reader's IP
// address and browser. mkstemp creates the file (O_EXCL: a planted name or
// symlink is never opened) and the rename replaces whatever is at `path`, a
// symlink included, without following it.
util::Result<std::string> write_temp(const std::string& path, const std::string& data, bool sync)
{
  const std::string dir = dir_of(path);
  std::string tmpl = dir + "/.pli-XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    return util::Error{Errc::io, fmt::format("cannot write in {}: {}", dir, std::strerror(errno))};
  }
  if (::fchmod(fd, 0600) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    return util::Error{Errc::io, fmt::format("cannot write {}: {}", path, std::strerror(e))};
  }
  std::size_t done = 0;
  bool ok = true;
  while (ok && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    ok = n > 0;
    done += ok ? static_cast<std::size_t>(n) : 0;
  }
  ok = ok && (!sync || ::fsync(fd) == 0);
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    int e = errno;
    ::unlink(tmpl.c_str());
    return util::Error{Errc::io, fmt::format("cannot write {}: {}", path, std::strerror(e))};
  }
  return tmpl;
}

} // namespace

FileBatch::~FileBatch()
{
  for (const auto& [tmp, path] : m_pending) {
    ::unlink(tmp.c_str());
  }
}

util::Status FileBatch::add(const std::string& path, const std::string& data)
{
  auto tmp = write_temp(path, data, false);
  if (!tmp) {
    return tmp.error();
  }
  m_pending.emplace_back(tmp.value(), path);
  return util::ok_status();
}

util::Status FileBatch::commit()
{
  std::vector<std::string> dirs;
  for (const auto& [tmp, path] : m_pending) {
    if (std::find(dirs.begin(), dirs.end(), dir_of(path)) == dirs.end()) {
      dirs.push_back(dir_of(path));
    }
  }
  // Each directory's file system flushed once (syncfs, or fsync for a
  // directory's entries): first every temporary file's data, then, after the
  // renames, the renames themselves.
  auto sync_dirs = [&](bool whole_fs) -> util::Status {
    for (const auto& d : dirs) {
      int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      bool ok = fd >= 0 && (whole_fs ? ::syncfs(fd) : ::fsync(fd)) == 0;
      int e = errno;
      if (fd >= 0) {
        ::close(fd);
      }
      if (!ok) {
        return util::Error{Errc::io, fmt::format("cannot sync {}: {}", d, std::strerror(e))};
      }
    }
    return util::ok_status();
  };
  if (auto st = sync_dirs(true); !st) {
    return st;
  }
  while (!m_pending.empty()) {
    const auto& [tmp, path] = m_pending.back();
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      return util::Error{Errc::io, fmt::format("cannot write {}: {}", path, std::strerror(errno))};
    }
    m_pending.pop_back();
  }
  return sync_dirs(false);
}

util::Status write_file_atomic(const std::string& path, const std::string& data)
{
  auto tmp = write_temp(path, data, true);
  if (!tmp) {
    return tmp.error();
  }
  if (::rename(tmp->c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp->c_str());
    return util::Error{Errc::io, fmt::format("cannot write {}: {}", path, std::strerror(e))};
  }
  return util::ok_status();
}

namespace {

// Draws the receipt (its evidence, signature and code already in `r`) with the
// font from `source` and fills r.pdf and r.pages. With the subset, `uncovered`
// tells whether some text needs the whole font (the PDF is complete either way,
// with blanks for those characters).
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
  pdf->pdf_version = HPDF_VER_14; // embedded files need PDF 1.4
  HPDF_SetCompressionMode(pdf, HPDF_COMP_ALL);
  HPDF_UseUTFEncodings(pdf);
  HPDF_SetCurrentEncoder(pdf, "UTF-8");
  const std::string font_label =
      source == FontSource::subset ? std::string("DejaVuSans (embedded subset)") : o.font_path;
  const char* font_name = source == FontSource::subset
                              ? load_subset_font(pdf)
                              : HPDF_LoadTTFontFromFile(pdf, o.font_path.c_str(), HPDF_TRUE);
  if (font_name == nullptr) {
    return util::Error{Errc::render, fmt::format("cannot load the font {} (libharu error 0x{:04X})",
                                                 font_label, err.error)};
  }
  HPDF_Font font = nullptr;
  if (source == FontSource::subset) {
    NarrowedEncoder narrowed(HPDF_GetEncoder(pdf, "UTF-8"));
    font = HPDF_GetFont(pdf, font_name, "UTF-8");
  } else {
    font = HPDF_GetFont(pdf, font_name, "UTF-8");
  }
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
  w.paragraph(L("Ce document contient en pièces jointes les données de preuve "
                "(evidence.json) et "
                "leur signature Ed25519 (evidence.sig). Seules ces données signées "
                "font foi : "
                "« pli verify FICHIER.pdf » vérifie la signature et affiche le même "
                "code de "
                "vérification. Chaque événement porte l'empreinte du précédent.",
                "This document carries the evidence (evidence.json) and its Ed25519 "
                "signature "
                "(evidence.sig) as attached files. Only the signed data is "
                "authoritative: "
                "\"pli verify FILE.pdf\" checks the signature and prints the same "
                "verification "
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
  fix_to_unicode(pdf, font,
                 w.scan().max_code_point); // XXX: when it cannot, poppler still
                                           // extracts (CID == Unicode)
  if (!trim_cid_to_gid_map(pdf, font, w.scan().max_code_point)) {
    return util::Error{Errc::render, "libharu's font has no CIDToGIDMap"};
  }

  // The page binding: each page's content as libharu holds it before writing
  // (the data its FlateDecode stream decodes to), hashed, then signed.
  std::vector<std::string> page_hashes;
  for (HPDF_Page p : pages) {
    auto* attr = static_cast<HPDF_PageAttr>(p->attr);
    auto content = stream_bytes(attr->stream);
    if (!content) {
      return util::Error{Errc::render, "cannot read a page's content back from libharu"};
    }
    page_hashes.push_back(util::sha256_hex(*content));
  }
  r.binding = pages_json(r.evidence, page_hashes);
  r.binding_signature = sign_document("pages.json", r.binding, key);

  // In name order (embed_file appends to the name tree).
  if (!embed_file(pdf, "evidence.json", "application/json", r.evidence) ||
      !embed_file(pdf, "evidence.sig", "application/json", r.signature) ||
      !embed_file(pdf, "pages.json", "application/json", r.binding) ||
      !embed_file(pdf, "pages.sig", "application/json", r.binding_signature)) {
    return util::Error{
        Errc::render, fmt::format("cannot embed the evidence (libharu error 0x{:04X})", err.error)};
  }
  if (err.error != 0) {
    return util::Error{Errc::render,
                       fmt::format("libharu error 0x{:04X} (detail {}) while building the "
                                   "receipt",
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
    if (rc == HPDF_STREAM_EOF) {
      break;
    }
    if (rc != HPDF_OK) {
      return util::Error{Errc::render,
                         fmt::format("cannot read the receipt back (libharu error 0x{:04X})", rc)};
    }
  }
  r.pdf = std::move(out);
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
