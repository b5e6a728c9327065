#include "core/cli/printer.hpp"

#include "core/cli/views.hpp"

#include <algorithm>
#include <ostream>

namespace pli::cli {

std::size_t display_width(const std::string& s)
{
  std::size_t n = 0;
  for (unsigned char c : s) {
    n += (c & 0xC0) != 0x80 ? 1 : 0;
  }
  return n;
}

std::string cut(const std::string& s, std::size_t max)
{
  std::string clean;
  clean.reserve(s.size());
  for (char c : s) {
    clean.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  }
  if (display_width(clean) <= max) {
    return clean;
  }
  std::string out;
  std::size_t n = 0;
  for (unsigned char c : clean) {
    if ((c & 0xC0) != 0x80 && ++n > max - 1) {
      break;
    }
    out.push_back(static_cast<char>(c));
  }
  return out + "…";
}

namespace {

class TextPrinter final : public Printer
{
public:
  explicit TextPrinter(std::ostream& out) : m_out(out) {}

  void heading(const std::string& text) override { m_out << "\n" << text << "\n"; }

  void field(const std::string& label, const std::string& value, std::size_t width) override
  {
    std::size_t w = display_width(label);
    m_out << label << std::string(w < width ? width - w : 1, ' ') << value << "\n";
  }

  void table(const std::vector<std::string>& head,
             const std::vector<std::vector<std::string>>& rows) override
  {
    std::vector<std::size_t> w(head.size());
    for (std::size_t i = 0; i < head.size(); ++i) {
      w[i] = display_width(head[i]);
      for (const auto& r : rows) {
        w[i] = std::max(w[i], display_width(r.at(i)));
      }
    }
    auto print = [&](const std::vector<std::string>& cells) {
      std::string out;
      for (std::size_t i = 0; i < cells.size(); ++i) {
        out += cells[i];
        if (i + 1 < cells.size()) {
          out += std::string(w[i] - display_width(cells[i]) + 2, ' ');
        }
      }
      while (!out.empty() && out.back() == ' ') {
        out.pop_back();
      }
      m_out << out << "\n";
    };
    print(head);
    for (const auto& r : rows) {
      print(r);
    }
  }

  void line(const std::string& text) override { m_out << text << "\n"; }

  void document(nlohmann::json) override {}

private:
  std::ostream& m_out;
};

class JsonPrinter final : public Printer
{
public:
  explicit JsonPrinter(std::ostream& out) : m_out(out) {}
  void heading(const std::string&) override {}
  void field(const std::string&, const std::string&, std::size_t) override {}
  void table(const std::vector<std::string>&, const std::vector<std::vector<std::string>>&) override
  {
  }
  void line(const std::string&) override {}
  void document(nlohmann::json doc) override
  {
    if (doc.is_object() && !doc.contains("format_version")) {
      doc["format_version"] = k_format_version;
    }
    m_out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }

private:
  std::ostream& m_out;
};

} // namespace

std::unique_ptr<Printer> make_printer(Format format, std::ostream& out)
{
  if (format == Format::json) {
    return std::make_unique<JsonPrinter>(out);
  }
  return std::make_unique<TextPrinter>(out);
}

} // namespace pli::cli
