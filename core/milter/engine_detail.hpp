// What engine.cpp and registration.cpp share: the verdicts of failures both meet, with
// their log lines. Internal to core/milter.
#pragma once

#include "core/milter/engine.hpp"
#include "core/util/result.hpp"

#include <string>
#include <string_view>

namespace pli::milter::detail {

// The log line and verdict of a store failure that tempfails the message
// (tempfail_store_full, which says what to do, or tempfail_store_error).
Verdict store_failure_logged(const std::string& queue_id, const util::Error& e,
                             const std::string& from);

// The log line and verdict when Postfix refused to remove `rcpt` from the original
// (tempfail_update_recipients).
Verdict recipients_not_updated(const std::string& queue_id, const std::string& rcpt);

// The value of the first header `name` (case-insensitive), or "".
std::string header_value(const Transaction& t, std::string_view name);

} // namespace pli::milter::detail
