// Options a buyer chooses from the mail client: subject tags such as
// [AR] [SIMPLE] [REPONSE] [REF:2022AK_014] [TYPE:rejet], in any case, with or without
// accents, and the X-Pli-Options header (which wins over tags). Recognised tags are
// removed from the subject; other bracketed words stay. A bad value is a warning and
// falls back to the default, never a rejected mail.
#pragma once

#include "core/model/model.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pli::milter {

struct ClientOptions
{
  std::optional<model::Mode> mode;
  std::optional<bool> reply;
  std::optional<std::string> reference;
  std::optional<model::MessageType> type;
  std::string subject; // the subject without the recognised tags
  bool subject_changed = false;
  std::vector<std::string> warnings; // one sentence each, for the log
};

// Reads the tags of `subject` (decoded UTF-8) and the value of X-Pli-Options
// (empty when absent).
ClientOptions parse_client_options(const std::string& subject, const std::string& header);

// True when `reference` is a usable consultation reference ([A-Za-z0-9_./-], 1..64).
bool valid_reference(const std::string& reference);

} // namespace pli::milter
