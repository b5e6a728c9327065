// How the engine hands a registered mail back to Postfix: one SMTP transaction per
// delivery on the re-injection listener (RFC 5321 with RFC 3461's DSN parameters). An
// interface so that unit tests drive the engine's decisions on every injection result
// without a Postfix; SmtpInjector is the real one.
#pragma once

#include "core/smtp/client.hpp"

#include <vector>

namespace pli::milter {

class Injector
{
public:
  virtual ~Injector() = default;
  // Sends each envelope in its own transaction; one result per envelope, in order (a lost
  // final reply is a temporary failure: the listener may have queued that message).
  // Never throws.
  virtual std::vector<smtp::TxnResult> send(const std::vector<smtp::Envelope>& envelopes) = 0;
};

// The re-injection listener through smtp::Pool (its sessions kept open between messages).
class SmtpInjector final : public Injector
{
public:
  explicit SmtpInjector(smtp::Options options) : m_pool(std::move(options)) {}
  std::vector<smtp::TxnResult> send(const std::vector<smtp::Envelope>& envelopes) override
  {
    return m_pool.send(envelopes);
  }

private:
  smtp::Pool m_pool;
};

} // namespace pli::milter
