// The receipt's verifiable evidence: signed bytes, so that a verifier never re-canonicalises.
//
// `evidence.json` is the canonical JSON (sorted keys, no whitespace, UTF-8, no trailing
// newline) of what the receipt states: the message (subject, type, sender, SHA-256 of the
// original and of each attachment, consultation), the delivery, and the message's hash
// chain: this delivery's events in full (their hashes recompute), other recipients'
// events as links only (seq, prev_hash, hash), so that nothing about other recipients
// leaks while the chain stays checkable. `evidence.sig` is
// {"alg":"Ed25519","kid":…,"signed":"evidence.json","sig":base64} over the exact bytes
// of evidence.json: the verifier never re-canonicalises.
//
// The page binding (since evidence format 2, which says so with "page_binding":"pages.json"):
// `pages.json` is {"evidence_sha256":…,"format_version":1,"kind":"pli-receipt-pages",
// "pages":[hex SHA-256 of each page's decoded content streams, in page order]} and
// `pages.sig` its signature, as evidence.sig is evidence.json's. The page shows the
// verification code, a hash of evidence.json, so the page hashes cannot be in
// evidence.json itself: they are bound to it by evidence_sha256 and their own signature.
#pragma once

#include "core/receipt/keys.hpp"
#include "core/receipt/timeline.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace pli::receipt {

// 2: the evidence names its page binding (pages.json); 1: receipts made before it.
constexpr int k_evidence_version = 2;
constexpr int k_pages_version = 1;

struct EvidenceContext
{
  std::string organisation;
  std::string timezone = "Europe/Paris";
  util::Micros issued_at = 0;
};

// The canonical evidence JSON of a delivery's exchange.
std::string evidence_json(const Exchange& x, const EvidenceContext& ctx);
// The detached signature document (evidence.sig) over `evidence`.
std::string sign_evidence(const std::string& evidence, const KeyPair& key);
// The detached signature document over `bytes`, naming them `name` ("pages.json").
std::string sign_document(const std::string& name, const std::string& bytes, const KeyPair& key);
// The page binding (pages.json) of `evidence` with these page hashes (hex SHA-256).
std::string pages_json(const std::string& evidence, const std::vector<std::string>& page_sha256);
// A short code printed on the receipt and by `pli verify`: base32 of the first 10 bytes of
// SHA-256(evidence.json), upper case, in groups of 4 ("ABCD-EFGH-IJKL-MNOP").
std::string verification_code(const std::string& evidence);

struct Verification
{
  bool valid = false;
  std::string reason;      // why it is not valid, one sentence
  std::string kid;         // the key id named by the signature
  nlohmann::json evidence; // parsed evidence (when it parses)
  std::string code;        // verification code of the evidence bytes
};

// Checks the signature with `key` (its public key), that the signature names that key,
// and that the evidence's events form an intact chain.
Verification verify_evidence(const std::string& evidence, const std::string& signature,
                             const KeyPair& key);
// Checks that `signature` is a signature of `bytes` named `name` by `key`. Returns the
// empty string when it is, else why not (one sentence).
std::string check_signature(const std::string& name, const std::string& bytes,
                            const std::string& signature, const KeyPair& key);

} // namespace pli::receipt
