// A small expected-like result type: a value or an error (code + message).
// Failures a caller must handle are values; exceptions are for the exceptional.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace pli::util {

struct Error
{
  int code = 0;        // module-specific code (e.g. a store::Errc value)
  std::string message; // one sentence, for logs and users
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
