// A small expected-like result type: a value or an error (code + message).
// Failures a caller must handle are values; exceptions are for the exceptional.
//
// An error's code is a std::error_code of the module that failed: each module has its own
// enum (store::Errc, receipt::Errc, config::Errc, util::Errc) registered with
// std::is_error_code_enum and its own std::error_category, so `e.code == store::Errc::full`
// is checked by the compiler and a receipt code never equals a store code. Exit statuses are
// not codes: each binary maps the errors it can meet to a <sysexits.h> status.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace pli::util {

struct Error
{
  std::error_code code; // a module's Errc (never a bare number)
  std::string message;  // one sentence, for logs and users
};

// A module's error category: its name ("pli.store") and the message of each code, code 1
// first (a code past the list reads "unknown"). PLI_ERROR_CODE_ENUM makes one per module.
class NamedCategory final : public std::error_category
{
public:
  NamedCategory(const char* name, std::initializer_list<const char*> messages)
      : m_name(name), m_messages(messages)
  {
  }
  const char* name() const noexcept override { return m_name; }
  std::string message(int code) const override
  {
    return code >= 1 && static_cast<std::size_t>(code) <= m_messages.size()
               ? m_messages[static_cast<std::size_t>(code) - 1]
               : "unknown";
  }

private:
  const char* m_name;
  std::vector<const char*> m_messages;
};

template <typename T> class Result
{
public:
  Result(T value) : m_v(std::move(value)) {}
  Result(Error error) : m_v(std::move(error)) {}

  [[nodiscard]] bool ok() const { return m_v.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value()
  {
    if (!ok()) {
      throw std::runtime_error(error().message);
    }
    return std::get<0>(m_v);
  }
  const T& value() const
  {
    if (!ok()) {
      throw std::runtime_error(error().message);
    }
    return std::get<0>(m_v);
  }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return std::get<1>(m_v); }

private:
  std::variant<T, Error> m_v;
};

struct Unit
{
};
using Status = Result<Unit>;
inline Status ok_status()
{
  return Unit{};
}

} // namespace pli::util

// Registers the error enum NS::ENUM (codes from 1, one enum per namespace) with
// std::is_error_code_enum and gives it its own category, named NAME, whose messages are the
// strings that follow, for codes 1, 2, ... Used at global scope after the enum; declares
// NS::error_category() and NS::make_error_code(ENUM).
#define PLI_ERROR_CODE_ENUM(NS, ENUM, NAME, ...)                                                   \
  namespace NS {                                                                                   \
  inline const std::error_category& error_category() noexcept                                      \
  {                                                                                                \
    static const ::pli::util::NamedCategory c(NAME, {__VA_ARGS__});                                \
    return c;                                                                                      \
  }                                                                                                \
  inline std::error_code make_error_code(ENUM e) noexcept                                          \
  {                                                                                                \
    return {static_cast<int>(e), error_category()};                                                \
  }                                                                                                \
  }                                                                                                \
  template <> struct std::is_error_code_enum<NS::ENUM> : std::true_type                            \
  {                                                                                                \
  }

namespace pli::util {
// util's own errors.
enum class Errc
{
  invalid_input = 1, // a text that does not parse (a network, a size)
};
} // namespace pli::util
PLI_ERROR_CODE_ENUM(pli::util, Errc, "pli.util", "invalid input");

// An invariant check that stays on in release builds.
#define PLI_ASSERT(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      ::pli::util::assertion_failed(#cond, __FILE__, __LINE__);                                    \
    }                                                                                              \
  } while (false)

namespace pli::util {
[[noreturn]] void assertion_failed(const char* expr, const char* file, int line);
}
