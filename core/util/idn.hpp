// Internationalised domain names (IDNA2008 with UTS #46 mapping, RFC 5891), through
// libidn2: one comparable form for a domain written with U-labels (例子.广告, ÉTÉ.fr) or
// A-labels (xn--fsqu00a.xn--4rr70v).
#pragma once

#include <string>
#include <string_view>

namespace pli::util {

// The domain's lower-case A-label form ("例子.广告" and "XN--FSQU00A.xn--4rr70v" both
// give "xn--fsqu00a.xn--4rr70v"; an ASCII domain gives itself lower-cased). A domain
// libidn2 cannot convert (not a valid IDN, or an address literal such as "[192.0.2.1]")
// gives its ASCII-lower-cased text. Never fails.
std::string domain_key(std::string_view domain);

} // namespace pli::util
