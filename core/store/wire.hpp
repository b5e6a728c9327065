// The protobuf wire format read field by field, with protobuf's public API only
// (io::CodedInputStream): a record's head can be read without parsing its bodies, whose
// length-delimited bytes are skipped. The tag layout is the documented wire format
// (field number << 3 | wire type), stable across protobuf versions.
#pragma once

#include <google/protobuf/io/coded_stream.h>

#include <cstdint>

namespace pli::store::wire {

enum class WireType : std::uint32_t
{
  varint = 0,
  fixed64 = 1,
  length_delimited = 2,
  start_group = 3,
  end_group = 4,
  fixed32 = 5,
};

// The field number of a tag read by CodedInputStream::ReadTag().
constexpr int field_number(std::uint32_t tag)
{
  return static_cast<int>(tag >> 3);
}
// The wire type of a tag.
constexpr WireType wire_type(std::uint32_t tag)
{
  return static_cast<WireType>(tag & 7);
}

// Skips the value of the field whose `tag` was just read (a group up to its end tag, within
// the stream's recursion limit). Returns false on a truncated or malformed value, an end
// tag without its group, or an unknown wire type.
inline bool skip_field(google::protobuf::io::CodedInputStream& in, std::uint32_t tag)
{
  switch (wire_type(tag)) {
  case WireType::varint: {
    std::uint64_t v = 0;
    return in.ReadVarint64(&v);
  }
  case WireType::fixed64: {
    std::uint64_t v = 0;
    return in.ReadLittleEndian64(&v);
  }
  case WireType::length_delimited: {
    std::uint32_t len = 0;
    return in.ReadVarint32(&len) && len <= static_cast<std::uint32_t>(INT32_MAX) &&
           in.Skip(static_cast<int>(len));
  }
  case WireType::start_group: {
    if (!in.IncrementRecursionDepth()) {
      return false;
    }
    bool ok = false;
    while (std::uint32_t t = in.ReadTag()) {
      if (wire_type(t) == WireType::end_group) {
        ok = field_number(t) == field_number(tag);
        break;
      }
      if (!skip_field(in, t)) {
        break;
      }
    }
    in.DecrementRecursionDepth();
    return ok;
  }
  case WireType::fixed32: {
    std::uint32_t v = 0;
    return in.ReadLittleEndian32(&v);
  }
  case WireType::end_group:
    break;
  }
  return false;
}

} // namespace pli::store::wire
