// A page template parsed once, rendered many times: the Mustache subset of pli-linkd's pages
// ({{name}} HTML-escaped, {{{name}}} and {{&name}} raw, {{#section}}, {{^inverted}},
// {{! comments}}), rendering exactly what mstch::render gives for the same text and context
// (the same standalone-line rule, the same escaping of & ' " < > /, the same truthiness).
// mstch tokenizes the template again on every render, which was most of a page's CPU;
// this keeps the token tree and appends into one output string.
//
// Not supported (refused when parsing, so a template using them fails at start-up):
// delimiter changes ({{=<% %>=}}). Partials ({{> name}}) render nothing, as with mstch
// without partials: App expands them textually before parsing. Lambdas and mstch::object
// nodes render nothing and have no keys (pli-linkd passes neither).
#pragma once

#include <mstch/mstch.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace pli::linkd {

class PageTemplate
{
public:
  // Throws std::runtime_error for an unbalanced section or a delimiter change.
  explicit PageTemplate(std::string_view text);

  // Renders with `ctx` as the root context; names missing everywhere are then looked up in
  // `globals` (when given), like an mstch::render of `ctx` with `globals`' keys added.
  std::string render(const mstch::map& ctx, const mstch::map* globals = nullptr) const;
  void render_to(std::string& out, const mstch::map& ctx, const mstch::map* globals) const;

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

} // namespace pli::linkd
