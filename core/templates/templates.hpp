// The template files of core/templates (mustache), compiled into the binaries so that
// an installed pli needs no data directory. They are rendered by core/templates/template.hpp
// (HTML-escaping {{x}}, raw {{{x}}}).
#pragma once

#include <string_view>

namespace pli::templates {

// The template file `name` (e.g. "notice.fr.txt"), or an empty view when unknown.
std::string_view get(std::string_view name);

} // namespace pli::templates
