#include "core/policy/policy.hpp"

#include "core/util/encoding.hpp"
#include "core/util/idn.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <vector>

namespace pli::policy {

namespace {

bool matches_any(const std::vector<std::string>& globs, const std::string& address)
{
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& glob) {
    return fnmatch(glob.c_str(), address.c_str(), FNM_CASEFOLD) == 0;
  });
}

std::string domain_of(const std::string& address)
{
  const auto at = address.rfind('@');
  return at == std::string::npos ? "" : address.substr(at + 1);
}

} // namespace

bool is_buyer(const config::Config::Policy& policy, const std::string& address)
{
  return matches_any(policy.buyers, address);
}

bool login_owns(const config::Config::Policy& policy, const std::string& login,
                const std::string& sender)
{
  const std::string l = util::ascii_lower(login);
  if (l == util::ascii_lower(sender)) {
    return true;
  }
  for (const char* key : {l.c_str(), "*"}) {
    auto it = policy.sender_logins.find(key);
    if (it != policy.sender_logins.end() && matches_any(it->second, sender)) {
      return true;
    }
  }
  return false;
}

bool is_internal(const config::Config::Policy& policy, const std::string& address)
{
  const std::string domain = util::domain_key(domain_of(address));
  return std::any_of(policy.internal_domains.begin(), policy.internal_domains.end(),
                     [&](const std::string& configured) {
                       const std::string d = util::domain_key(configured);
                       return domain == d ||
                              (domain.size() > d.size() &&
                               domain.compare(domain.size() - d.size(), d.size(), d) == 0 &&
                               domain[domain.size() - d.size() - 1] == '.');
                     });
}

bool is_trusted_client(const config::Config::Policy& policy, const std::string& ip)
{
  return std::any_of(policy.trusted_networks.begin(), policy.trusted_networks.end(),
                     [&](const util::Cidr& net) { return net.contains(ip); });
}

bool may_log_in(const config::Config& config, const std::string& address)
{
  const auto& admins = config.buyers_area.admins;
  return std::find(admins.begin(), admins.end(), address) != admins.end() ||
         is_buyer(config.policy, address);
}

} // namespace pli::policy
