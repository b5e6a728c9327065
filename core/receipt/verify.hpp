// `pli verify FILE.pdf`: what a receipt proves, checked (signed_evidence.hpp,
// pdf_reader.hpp). Valid means: evidence.json is signed by the configured key and its chain
// is intact, and — for receipts made since the page binding (evidence format 2) — pages.json
// is signed by the same key, names this evidence, and every page's content stream in the
// file hashes to what it says. A receipt of format 1 (made before the binding) is valid on
// its evidence alone, and says that its pages are not bound. Only files embedded through the
// catalog are read. What is not checked is stated, never implied.
#pragma once

#include "core/model/model.hpp"
#include "core/receipt/keys.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace pli::receipt {

enum class PageBinding
{
  bound,    // every page's content matches the signed page binding
  absent,   // a receipt made before the binding: its pages are not bound
  mismatch, // the binding is there and does not match (the receipt is invalid)
};

struct ReceiptCheck
{
  bool valid = false;
  std::string reason; // why it is not valid, one sentence in the locale
  std::string kid;
  std::string code;
  nlohmann::json evidence; // when it parses
  PageBinding pages = PageBinding::absent;
  std::size_t page_count = 0;
  // What verify did not check, one sentence each, in the locale (also for invalid receipts).
  std::vector<std::string> not_checked;
};

// Checks the receipt `pdf` against `key` (its public key). Never fails: an unreadable file
// is a ReceiptCheck with valid false and the reason.
ReceiptCheck check_receipt(const std::string& pdf, const KeyPair& key, model::Locale locale);

// The stable code of a PageBinding ("bound", "absent", "mismatch").
const char* code(PageBinding b);

} // namespace pli::receipt
