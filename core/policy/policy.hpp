// Who is who, from the config's `policy` and `buyers_area` sections: whether an address is a
// buyer's (its mail is registered, it may use the buyers' area), whether a recipient is
// internal (it keeps the original message), whether an SMTP client is trusted (no SMTP AUTH
// needed), whether a SASL login may use a sender address. The one place the milter
// (milter/engine.cpp) and the buyers' area (linkd/suivi.cpp) decide it.
//
// Addresses are compared as the callers give them; buyer globs (fnmatch(3)) ignore case,
// domains are compared on their A-labels (RFC 5890), so a domain written with U-labels is
// the same domain.
#pragma once

#include "core/config/config.hpp"

#include <string>

namespace pli::policy {

// True when `address` matches one of policy.buyers (shell globs, case-insensitive).
bool is_buyer(const config::Config::Policy& policy, const std::string& address);

// True when SASL `login` may send as `sender`: the login itself (ASCII case-insensitive), or
// a glob of policy.sender_logins under the login (lower-case) or under "*".
bool login_owns(const config::Config::Policy& policy, const std::string& login,
                const std::string& sender);

// True when the domain of `address` (after its last '@') is one of policy.internal_domains
// or a subdomain of one.
bool is_internal(const config::Config::Policy& policy, const std::string& address);

// True when the client address `ip` is in one of policy.trusted_networks.
bool is_trusted_client(const config::Config::Policy& policy, const std::string& ip);

// True when `address` may log in to the buyers' area: one of buyers_area.admins (exactly), or
// a buyer (is_buyer).
bool may_log_in(const config::Config& config, const std::string& address);

} // namespace pli::policy
