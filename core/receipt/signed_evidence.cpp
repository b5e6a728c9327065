#include "core/receipt/signed_evidence.hpp"

#include "core/store/evidence.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include <fmt/format.h>
#include <sodium.h>

namespace pli::receipt {

using nlohmann::json;

namespace {

std::string dump(const json& j)
{
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json attachments_json(const store::pb::Message& m)
{
  json out = json::array();
  for (const auto& a : m.attachments()) {
    out.push_back({{"name", a.name()},
                   {"media_type", a.media_type()},
                   {"size", a.size()},
                   {"sha256", a.sha256()}});
  }
  return out;
}

} // namespace

std::string evidence_json(const Exchange& x, const EvidenceContext& ctx)
{
  const auto& m = x.message;
  const auto& d = x.delivery;
  json consultation = nullptr;
  if (!m.consultation().empty()) {
    consultation = {{"reference", m.consultation()}};
    if (x.consultation) {
      consultation["title"] = x.consultation->title();
      consultation["object"] = x.consultation->object();
      consultation["deadline"] =
          x.consultation->deadline() == 0
              ? json(nullptr)
              : json(util::format_iso(x.consultation->deadline(), ctx.timezone));
    }
  }
  json events = json::array();
  for (const auto& e : x.events) {
    if (e.delivery() != d.id()) {
      events.push_back(
          {{"seq", e.seq()}, {"prev_hash", e.prev_hash()}, {"hash", e.hash()}, {"redacted", true}});
      continue;
    }
    json detail = json::object();
    for (const auto& [k, v] : e.detail()) {
      detail[k] = v;
    }
    events.push_back({{"seq", e.seq()},
                      {"kind", std::string(model::code(static_cast<model::EventKind>(e.kind())))},
                      {"at", e.at()},
                      {"at_iso", util::format_iso(e.at(), ctx.timezone)},
                      {"message", e.message()},
                      {"delivery", e.delivery()},
                      {"detail", detail},
                      {"prev_hash", e.prev_hash()},
                      {"hash", e.hash()}});
  }
  json j = {
      {"format_version", k_evidence_version},
      {"kind", "pli-receipt"},
      {"organisation", ctx.organisation},
      {"issued_at", util::format_iso(ctx.issued_at, ctx.timezone)},
      {"message",
       {{"id", m.id()},
        {"message_id", m.message_id()},
        {"subject", m.subject()},
        {"type", std::string(model::code(static_cast<model::MessageType>(m.type())))},
        {"mode", std::string(model::code(static_cast<model::Mode>(m.mode())))},
        {"reply_allowed", m.reply_allowed()},
        {"sender", m.sender()},
        {"from", m.from_header()},
        {"sent_at", util::format_iso(m.sent_at(), ctx.timezone)},
        {"original_sha256", m.original_sha256()},
        {"original_size", m.original_size()},
        {"attachments", attachments_json(m)},
        {"consultation", consultation}}},
      {"delivery",
       {{"id", d.id()},
        {"recipient", d.recipient()},
        {"status", std::string(model::code(static_cast<model::Status>(d.status())))}}},
      {"events", events},
      {"chain_head", x.events.empty() ? std::string() : x.events.back().hash()},
      {"page_binding", "pages.json"},
  };
  return dump(j);
}

std::string sign_document(const std::string& name, const std::string& bytes, const KeyPair& key)
{
  util::crypto_init();
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(bytes.data()),
                       bytes.size(), reinterpret_cast<const unsigned char*>(key.secret_key.data()));
  json s = {{"alg", "Ed25519"},
            {"kid", key.kid},
            {"signed", name},
            {"sig", util::base64(std::string(reinterpret_cast<const char*>(sig), sizeof sig))}};
  return dump(s);
}

std::string sign_evidence(const std::string& evidence, const KeyPair& key)
{
  return sign_document("evidence.json", evidence, key);
}

std::string pages_json(const std::string& evidence, const std::vector<std::string>& page_sha256)
{
  json j = {{"format_version", k_pages_version},
            {"kind", "pli-receipt-pages"},
            {"evidence_sha256", util::sha256_hex(evidence)},
            {"pages", page_sha256}};
  return dump(j);
}

std::string check_signature(const std::string& name, const std::string& bytes,
                            const std::string& signature, const KeyPair& key)
{
  util::crypto_init();
  json sig;
  try {
    sig = json::parse(signature);
  } catch (const std::exception&) {
    return fmt::format("the signature of {} is not valid JSON", name);
  }
  if (!sig.is_object() || sig.value("alg", "") != "Ed25519" || sig.value("signed", "") != name ||
      !sig.contains("sig") || !sig["sig"].is_string()) {
    return fmt::format("the signature of {} is not an Ed25519 signature of it", name);
  }
  const std::string kid = sig.value("kid", "");
  auto raw = util::base64_decode(sig["sig"].get<std::string>());
  if (!raw || raw->size() != crypto_sign_BYTES) {
    return fmt::format("the signature value of {} is not 64 bytes of base64", name);
  }
  if (kid != key.kid) {
    return fmt::format("{} names signing key {}, not the configured key {}", name, kid, key.kid);
  }
  if (crypto_sign_verify_detached(
          reinterpret_cast<const unsigned char*>(raw->data()),
          reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
          reinterpret_cast<const unsigned char*>(key.public_key.data())) != 0) {
    return fmt::format("the signature of {} does not match it: the receipt was altered or not "
                       "signed by this key",
                       name);
  }
  return {};
}

std::string verification_code(const std::string& evidence)
{
  std::string b32 = util::base32_lower(util::sha256(evidence).substr(0, 10));
  std::string out;
  for (std::size_t i = 0; i < b32.size(); ++i) {
    if (i != 0 && i % 4 == 0) {
      out.push_back('-');
    }
    char c = b32[i];
    out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
  }
  return out;
}

Verification verify_evidence(const std::string& evidence, const std::string& signature,
                             const KeyPair& key)
{
  util::crypto_init();
  Verification v;
  v.code = verification_code(evidence);
  json sig;
  try {
    sig = json::parse(signature);
  } catch (const std::exception&) {
    v.reason = "the signature (evidence.sig) is not valid JSON";
    return v;
  }
  if (!sig.is_object() || sig.value("alg", "") != "Ed25519" ||
      sig.value("signed", "") != "evidence.json" || !sig.contains("sig") ||
      !sig["sig"].is_string()) {
    v.reason = "the signature (evidence.sig) is not an Ed25519 signature of evidence.json";
    return v;
  }
  v.kid = sig.value("kid", "");
  try {
    v.evidence = json::parse(evidence);
  } catch (const std::exception&) {
    v.evidence = nullptr;
  }
  auto raw = util::base64_decode(sig["sig"].get<std::string>());
  if (!raw || raw->size() != crypto_sign_BYTES) {
    v.reason = "the signature value is not 64 bytes of base64";
    return v;
  }
  if (v.kid != key.kid) {
    v.reason =
        fmt::format("the receipt names signing key {}, not the configured key {}", v.kid, key.kid);
    return v;
  }
  if (crypto_sign_verify_detached(
          reinterpret_cast<const unsigned char*>(raw->data()),
          reinterpret_cast<const unsigned char*>(evidence.data()), evidence.size(),
          reinterpret_cast<const unsigned char*>(key.public_key.data())) != 0) {
    v.reason = "the signature does not match the evidence: the receipt was altered or not "
               "signed by this key";
    return v;
  }
  if (!v.evidence.is_object() || !v.evidence.contains("events") ||
      !v.evidence["events"].is_array()) {
    v.reason = "the evidence has no events";
    return v;
  }
  // The chain: every link holds, and every event given in full recomputes its hash.
  std::string prev;
  for (const auto& e : v.evidence["events"]) {
    const std::string hash = e.value("hash", "");
    if (e.value("prev_hash", "") != prev) {
      v.reason = fmt::format("the event chain is broken at event {}", e.value("seq", 0));
      return v;
    }
    if (!e.value("redacted", false)) {
      store::pb::Event pe;
      pe.set_message(e.value("message", ""));
      pe.set_delivery(e.value("delivery", ""));
      pe.set_seq(e.value("seq", 0U));
      auto kind = model::parse_event_kind(e.value("kind", ""));
      pe.set_kind(kind ? static_cast<std::uint32_t>(*kind) : 0);
      pe.set_at(e.value("at", std::int64_t{0}));
      if (e.contains("detail") && e["detail"].is_object()) {
        for (const auto& [k, val] : e["detail"].items()) {
          (*pe.mutable_detail())[k] = val.is_string() ? val.get<std::string>() : val.dump();
        }
      }
      pe.set_prev_hash(prev);
      if (!kind || store::event_hash(pe) != hash) {
        v.reason = fmt::format("event {} does not match its hash", e.value("seq", 0));
        return v;
      }
    }
    prev = hash;
  }
  if (v.evidence.value("chain_head", "") != prev) {
    v.reason = "the chain head does not match the last event";
    return v;
  }
  v.valid = true;
  return v;
}

} // namespace pli::receipt
