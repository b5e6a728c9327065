#include "core/util/cidr.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace pli::util {

namespace {

// Parses a textual address into 16 bytes (IPv4 in the first 4). Returns false if it is none.
bool parse_address(const std::string& text, bool& ipv6, std::array<std::uint8_t, 16>& out)
{
  out.fill(0);
  if (text.find(':') == std::string::npos) {
    ipv6 = false;
    return inet_pton(AF_INET, text.c_str(), out.data()) == 1;
  }
  ipv6 = true;
  if (inet_pton(AF_INET6, text.c_str(), out.data()) != 1) {
    return false;
  }
  static constexpr std::uint8_t k_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(out.data(), k_mapped, sizeof k_mapped) == 0) {
    // ::ffff:a.b.c.d: the IPv4 client of a dual-stack socket.
    std::memmove(out.data(), out.data() + 12, 4);
    std::memset(out.data() + 4, 0, 12);
    ipv6 = false;
  }
  return true;
}

Error bad(std::string_view text, const std::string& why)
{
  return Error{Errc::invalid_input, "'" + std::string(text) + "' is not a network: " + why};
}

} // namespace

Result<Cidr> Cidr::parse(std::string_view text)
{
  const auto slash = text.find('/');
  const std::string address(text.substr(0, slash));
  Cidr c;
  if (address.empty() || address.find_first_of(" \t") != std::string::npos ||
      !parse_address(address, c.m_ipv6, c.m_addr) ||
      (address.find(':') != std::string::npos) != c.m_ipv6) {
    return bad(text, "write ADDRESS/PREFIX with an IPv4 or IPv6 address, e.g. 10.0.0.0/8 or "
                     "2001:db8::/32");
  }
  const int max = c.m_ipv6 ? 128 : 32;
  c.m_prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3 ||
        digits.find_first_not_of("0123456789") != std::string_view::npos) {
      return bad(text,
                 "the prefix length after '/' must be a number from 0 to " + std::to_string(max));
    }
    c.m_prefix = std::stoi(std::string(digits));
    if (c.m_prefix > max) {
      return bad(text,
                 "the prefix length after '/' must be a number from 0 to " + std::to_string(max));
    }
  }
  for (int bit = c.m_prefix; bit < max; ++bit) {
    if ((c.m_addr[bit / 8] & (0x80 >> (bit % 8))) != 0) {
      Cidr masked = c;
      for (int b = c.m_prefix; b < max; ++b) {
        masked.m_addr[b / 8] &= static_cast<std::uint8_t>(~(0x80 >> (b % 8)));
      }
      return bad(text,
                 "the address has bits set beyond the prefix (did you mean " + masked.str() + "?)");
    }
  }
  return c;
}

bool Cidr::contains(std::string_view ip) const
{
  bool v6 = false;
  std::array<std::uint8_t, 16> a{};
  if (!parse_address(std::string(ip), v6, a) || v6 != m_ipv6) {
    return false;
  }
  int bits = m_prefix;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    const auto mask = static_cast<std::uint8_t>(bits >= 8 ? 0xff : 0xff << (8 - bits));
    if ((a[i] & mask) != (m_addr[i] & mask)) {
      return false;
    }
  }
  return true;
}

std::string Cidr::str() const
{
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(m_ipv6 ? AF_INET6 : AF_INET, m_addr.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(m_prefix);
}

} // namespace pli::util
