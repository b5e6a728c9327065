// Network prefixes ("10.0.0.0/8", "2001:db8::/32", a bare address for one host), as
// written in pli.yaml, parsed once and matched against client addresses.
//
// The prefix length is bounded (0..32 for IPv4, 0..128 for IPv6); an address with bits
// set beyond the prefix ("10.0.0.1/8") is refused rather than masked, since it usually
// means a typo in the prefix. IPv4 clients that reach an IPv6 socket as IPv4-mapped
// addresses (::ffff:192.0.2.1) match IPv4 prefixes.
#pragma once

#include "core/util/result.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace pli::util {

class Cidr
{
public:
  // Parses "ADDRESS/PREFIX" or "ADDRESS". Returns the prefix, or an Error whose message
  // is one sentence naming the value and what is wrong (util::Errc::invalid_input).
  static Result<Cidr> parse(std::string_view text);

  // True when `ip` (a textual IPv4 or IPv6 address) lies in this prefix; false for a text
  // that is not an address.
  bool contains(std::string_view ip) const;

  // The prefix in its canonical form, e.g. "10.0.0.0/8", "2001:db8::/32".
  std::string str() const;

  bool ipv6() const { return m_ipv6; }
  int prefix() const { return m_prefix; }

private:
  bool m_ipv6 = false;
  int m_prefix = 0;
  std::array<std::uint8_t, 16> m_addr{};
};

} // namespace pli::util
