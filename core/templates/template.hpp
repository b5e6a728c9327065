// The project's one template engine, for pli-linkd's pages and for the mails pli writes: a
// template parsed once, rendered many times, in the Mustache subset the templates of
// core/templates use ({{name}} HTML-escaped, {{{name}}} and {{&name}} raw, {{#section}},
// {{^inverted}}, {{! comments}}), rendering exactly what mstch::render gives for the same
// text and context (the same standalone-line rule, the same escaping of & ' " < > /, the
// same truthiness): tests/unit/test_template.cpp checks it against mstch on every template.
// The rules are the same for every output: a page writes its values {{name}}, a text mail
// writes them {{{name}}} (the notice's {{organisation}} is HTML-escaped in its text part, as
// mstch always rendered it). It keeps the token tree and appends into one output string.
//
// Not supported (refused when parsing, so a template using them fails at start-up):
// delimiter changes ({{=<% %>=}}). Partials ({{> name}}) render nothing, as with mstch
// without partials: pli-linkd expands them textually before parsing. No lambdas.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace pli::templates {

class Value;
using Map = std::map<std::string, Value, std::less<>>;
using List = std::vector<Value>;

// A value of a template's context, as mstch::node had them: nothing, a string, a boolean, a
// number, a map or a list. A string literal is refused at compile time (mstch turned a
// `const char*` into the boolean true): write std::string("...").
class Value
{
public:
  using Variant = std::variant<std::nullptr_t, std::string, bool, int, double, Map, List>;

  Value() = default;
  Value(std::nullptr_t) {}
  Value(std::string s) : m_v(std::move(s)) {}
  Value(bool b) : m_v(b) {}
  Value(int n) : m_v(n) {}
  Value(double d) : m_v(d) {}
  Value(Map m) : m_v(std::move(m)) {}
  Value(List l) : m_v(std::move(l)) {}
  Value(const char*) = delete;
  // Copied and moved alternative by alternative: GCC 12 warns (-Wmaybe-uninitialized, a false
  // positive) on std::variant's own move of a variant holding a map next to scalars.
  Value(const Value& o) : m_v(std::visit(copy_alternative, o.m_v)) {}
  Value(Value&& o) noexcept : m_v(std::visit(move_alternative, o.m_v)) {}
  Value& operator=(const Value& o)
  {
    if (this != &o) {
      m_v = std::visit(copy_alternative, o.m_v);
    }
    return *this;
  }
  Value& operator=(Value&& o) noexcept
  {
    if (this != &o) {
      m_v = std::visit(move_alternative, o.m_v);
    }
    return *this;
  }
  ~Value() = default;
  template <class T>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, int> &&
           !std::is_same_v<T, double>) Value(T)
  = delete;

  const Variant& variant() const { return m_v; }
  // The string, map or list held, or nullptr.
  const std::string* string() const { return std::get_if<std::string>(&m_v); }
  const Map* map() const { return std::get_if<Map>(&m_v); }
  const List* list() const { return std::get_if<List>(&m_v); }
  // Mustache's falsiness: nothing, "", false, 0, 0.0 and an empty list (a map is never).
  bool empty() const;

private:
  static constexpr auto copy_alternative = [](const auto& x) {
    return Variant(std::in_place_type<std::decay_t<decltype(x)>>, x);
  };
  static constexpr auto move_alternative = [](auto& x) {
    return Variant(std::in_place_type<std::decay_t<decltype(x)>>, std::move(x));
  };

  Variant m_v = nullptr;
};

class Template
{
public:
  // Throws std::runtime_error for an unbalanced section or a delimiter change.
  explicit Template(std::string_view text);

  // Renders with `ctx` as the root context; names missing everywhere are then looked up in
  // `globals` (when given), like an mstch::render of `ctx` with `globals`' keys added.
  std::string render(const Map& ctx, const Map* globals = nullptr) const;
  void render_to(std::string& out, const Map& ctx, const Map* globals) const;

private:
  enum class Kind : unsigned char
  {
    text,
    escaped,
    raw,
    section,
    inverted,
  };
  struct Node
  {
    Kind kind;
    std::string text;    // the text, or the name looked up
    std::size_t end = 0; // sections: index of the first node after the section's body
  };
  struct Scope;
  void render_range(std::string& out, std::size_t begin, std::size_t end, Scope& scope) const;

  std::vector<Node> m_nodes; // sections in pre-order, their body right after them
  std::size_t m_size_hint = 0;
};

// mstch's HTML escaping (& ' " < > /), appended to `out`.
void append_html_escaped(std::string& out, std::string_view text);

// Renders the template file `name` of core/templates (templates::get) with `ctx`, parsing it
// for this call (for the mails, rendered a few times a minute at most). Throws
// std::runtime_error when the file is missing or does not parse.
std::string render_file(std::string_view name, const Map& ctx);

} // namespace pli::templates
