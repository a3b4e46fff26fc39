#include "infer/protobuf_reader.h"

#include <string>

namespace vidscan::infer {
namespace {

Status Corrupt(const std::string& what) { return MakeError(StatusCode::kCorruptData, what); }

// Varint at data[*pos], bounded by the view; advances *pos.
Status DecodeVarint(std::string_view data, size_t* pos, uint64_t* value) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= data.size()) return Corrupt("truncated varint at offset " + std::to_string(*pos));
    const uint8_t byte = static_cast<uint8_t>(data[(*pos)++]);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *value = result;
      return Status::Ok();
    }
  }
  return Corrupt("varint longer than 10 bytes at offset " + std::to_string(*pos));
}

template <typename T>
T LoadLittleEndian(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));  // x86-64 and aarch64 are little-endian, as the wire format is
  return value;
}

template <typename T, typename Stored>
Status AppendFixed(const WireField& field, WireType single, std::vector<T>* out) {
  if (field.type == single) {
    Stored v;
    std::memcpy(&v, &field.value, sizeof(Stored));
    out->push_back(static_cast<T>(v));
    return Status::Ok();
  }
  if (field.type != WireType::kLengthDelimited) return Corrupt("field " + std::to_string(field.number) + " has a wrong wire type");
  if (field.bytes.size() % sizeof(Stored) != 0)
    return Corrupt("packed field " + std::to_string(field.number) + " length is not a multiple of its element size");
  const size_t n = field.bytes.size() / sizeof(Stored);
  out->reserve(out->size() + n);  // bounded by bytes present, not by anything the file declares
  for (size_t k = 0; k < n; ++k) out->push_back(static_cast<T>(LoadLittleEndian<Stored>(field.bytes.data() + k * sizeof(Stored))));
  return Status::Ok();
}

}  // namespace

Status ProtoReader::ReadVarint(uint64_t* value) { return DecodeVarint(data_, &pos_, value); }

Status ProtoReader::Next(WireField* field) {
  const size_t start = pos_;
  uint64_t key = 0;
  VS_RETURN_IF_ERROR(ReadVarint(&key));
  field->number = static_cast<uint32_t>(key >> 3);
  if (field->number == 0 || (key >> 3) > 0x1fffffff) return Corrupt("invalid field number at offset " + std::to_string(start));
  field->bytes = {};
  field->value = 0;
  switch (key & 7) {
    case 0:
      field->type = WireType::kVarint;
      return ReadVarint(&field->value);
    case 1:
      field->type = WireType::kFixed64;
      if (data_.size() - pos_ < 8) return Corrupt("truncated fixed64 at offset " + std::to_string(pos_));
      field->value = LoadLittleEndian<uint64_t>(data_.data() + pos_);
      pos_ += 8;
      return Status::Ok();
    case 2: {
      field->type = WireType::kLengthDelimited;
      uint64_t length = 0;
      VS_RETURN_IF_ERROR(ReadVarint(&length));
      if (length > data_.size() - pos_)
        return Corrupt("field " + std::to_string(field->number) + " at offset " + std::to_string(start) + " declares " +
                       std::to_string(length) + " bytes but only " + std::to_string(data_.size() - pos_) + " remain");
      field->bytes = data_.substr(pos_, length);
      pos_ += length;
      return Status::Ok();
    }
    case 5:
      field->type = WireType::kFixed32;
      if (data_.size() - pos_ < 4) return Corrupt("truncated fixed32 at offset " + std::to_string(pos_));
      field->value = LoadLittleEndian<uint32_t>(data_.data() + pos_);
      pos_ += 4;
      return Status::Ok();
    default:  // 3/4 are deprecated groups, 6/7 do not exist: neither appears in an ONNX file
      return Corrupt("unsupported wire type " + std::to_string(key & 7) + " at offset " + std::to_string(start));
  }
}

Status ProtoReader::Expect(const WireField& field, WireType type, const char* what) {
  if (field.type == type) return Status::Ok();
  return Corrupt(std::string(what) + " (field " + std::to_string(field.number) + ") has wire type " +
                 std::to_string(static_cast<int>(field.type)) + ", expected " + std::to_string(static_cast<int>(type)));
}

Status ProtoReader::AppendInt64s(const WireField& field, std::vector<int64_t>* out) {
  if (field.type == WireType::kVarint) {
    out->push_back(static_cast<int64_t>(field.value));
    return Status::Ok();
  }
  if (field.type != WireType::kLengthDelimited) return Corrupt("field " + std::to_string(field.number) + " has a wrong wire type");
  size_t pos = 0;
  while (pos < field.bytes.size()) {
    uint64_t v = 0;
    VS_RETURN_IF_ERROR(DecodeVarint(field.bytes, &pos, &v));
    out->push_back(static_cast<int64_t>(v));
  }
  return Status::Ok();
}

Status ProtoReader::AppendFloats(const WireField& field, std::vector<float>* out) {
  return AppendFixed<float, float>(field, WireType::kFixed32, out);
}

Status ProtoReader::AppendDoubles(const WireField& field, std::vector<double>* out) {
  return AppendFixed<double, double>(field, WireType::kFixed64, out);
}

}  // namespace vidscan::infer
