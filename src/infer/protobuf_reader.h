// A bounds-checked reader for the protobuf wire format (the subset ONNX uses): every length is checked
// against the bytes that remain before it is used, so a truncated or hostile buffer yields an error, never
// an out-of-bounds read or an allocation sized by the file. Keeps libprotobuf out of the static binary.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vidscan::infer {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One field as read from a message: its number, wire type and payload (the varint/fixed value, or the
// bytes of a length-delimited field, which point into the caller's buffer).
struct WireField {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  uint64_t value = 0;
  std::string_view bytes;
};

class ProtoReader {
 public:
  explicit ProtoReader(std::string_view message) : data_(message) {}

  bool done() const { return pos_ >= data_.size(); }
  // Reads the next field; an error names the offset and what was wrong.
  Status Next(WireField* field);

  // Decoders for repeated scalars, which may arrive packed (one length-delimited field) or one per field.
  static Status AppendInt64s(const WireField& field, std::vector<int64_t>* out);
  static Status AppendFloats(const WireField& field, std::vector<float>* out);
  static Status AppendDoubles(const WireField& field, std::vector<double>* out);
  // The field must have the given wire type (a mismatch means the bytes are not the message we expect).
  static Status Expect(const WireField& field, WireType type, const char* what);

 private:
  Status ReadVarint(uint64_t* value);
  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace vidscan::infer
