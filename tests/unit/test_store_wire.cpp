// store::wire: the record head reader's field walk over protobuf's public API.
#include "core/store/records.pb.h"
#include "core/store/wire.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

using namespace pli::store;
namespace io = google::protobuf::io;

namespace {

// Walks every field of `bytes`: the field numbers seen, or "!" when a skip failed.
std::string walk(const std::string& bytes)
{
  io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  std::string seen;
  while (std::uint32_t tag = in.ReadTag()) {
    seen += std::to_string(wire::field_number(tag)) + " ";
    if (!wire::skip_field(in, tag)) {
      return seen + "!";
    }
  }
  return in.ConsumedEntireMessage() && in.CurrentPosition() == static_cast<int>(bytes.size())
             ? seen
             : seen + "?";
}

std::string tag(int field, wire::WireType t)
{
  return std::string(1, static_cast<char>((field << 3) | static_cast<int>(t)));
}

} // namespace

TEST_CASE("wire: tags split into field number and wire type", "[store][wire]")
{
  CHECK(wire::field_number(0x0A) == 1);
  CHECK(wire::wire_type(0x0A) == wire::WireType::length_delimited);
  CHECK(wire::field_number(30u << 3 | 2u) == 30);
  CHECK(wire::wire_type(11u << 3) == wire::WireType::varint);
  CHECK(wire::wire_type(5u << 3 | 5u) == wire::WireType::fixed32);
}

TEST_CASE("wire: a message record is walked field by field", "[store][wire]")
{
  pb::Message m;
  m.set_version(1);
  m.set_id("m1");
  m.set_type(3);
  m.set_sender("a@example.org");
  m.set_sent_at(-5); // a negative int64: a 10-byte varint
  m.set_original_size(1ULL << 40);
  m.set_text_body(std::string(100000, 'x'));
  m.add_attachments()->set_name("a.pdf");
  m.add_delivery_ids("d1");
  m.add_delivery_ids("d2");
  CHECK(walk(m.SerializeAsString()) == "1 2 5 9 11 13 14 15 17 17 ");
}

TEST_CASE("wire: fixed-width values and groups are skipped", "[store][wire]")
{
  using W = wire::WireType;
  std::string f32 = tag(3, W::fixed32) + std::string("\x01\x02\x03\x04", 4);
  std::string f64 = tag(4, W::fixed64) + std::string(8, '\x07');
  CHECK(walk(f32 + f64) == "3 4 ");
  // A group with a varint and a nested group inside, then a varint after it.
  std::string group = tag(6, W::start_group) + tag(1, W::varint) + "\x05" + tag(2, W::start_group) +
                      tag(2, W::end_group) + tag(6, W::end_group) + tag(7, W::varint) + "\x01";
  CHECK(walk(group) == "6 7 ");
}

TEST_CASE("wire: malformed values are refused", "[store][wire]")
{
  using W = wire::WireType;
  // Truncated: a fixed32 of 3 bytes, a fixed64 of 7, a length past the end, a varint cut.
  CHECK(walk(tag(3, W::fixed32) + "\x01\x02\x03") == "3 !");
  CHECK(walk(tag(4, W::fixed64) + std::string(7, '\x07')) == "4 !");
  CHECK(walk(tag(5, W::length_delimited) + "\x05" + "abc") == "5 !");
  CHECK(walk(tag(1, W::varint) + "\x80") == "1 !");
  // An end tag without its group, a group closed by another field's end, an unclosed one.
  CHECK(walk(tag(6, W::end_group)) == "6 !");
  CHECK(walk(tag(6, W::start_group) + tag(8, W::end_group)) == "6 !");
  CHECK(walk(tag(6, W::start_group) + tag(1, W::varint) + "\x01") == "6 !");
  // Wire types 6 and 7 do not exist.
  CHECK(walk(std::string(1, static_cast<char>(1 << 3 | 6))) == "1 !");
  CHECK(walk(std::string(1, static_cast<char>(1 << 3 | 7))) == "1 !");
}

TEST_CASE("wire: nested groups stop at the stream's recursion limit", "[store][wire]")
{
  using W = wire::WireType;
  std::string deep;
  for (int i = 0; i < 150; ++i) {
    deep += tag(6, W::start_group);
  }
  for (int i = 0; i < 150; ++i) {
    deep += tag(6, W::end_group);
  }
  CHECK(walk(deep) == "6 !"); // the default limit is 100
}
