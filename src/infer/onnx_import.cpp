// ONNX import: the messages of onnx.proto (github.com/onnx/onnx, MIT) that an inference graph needs, read
// with the bounds-checked ProtoReader. Field numbers follow onnx.proto; unknown fields are skipped as the
// protobuf rules require.
#include <fstream>
#include <set>
#include <sstream>

#include "infer/infer.h"
#include "infer/protobuf_reader.h"

namespace vidscan::infer {
namespace {

// onnx.proto TensorProto.DataType values we accept.
enum OnnxType : int64_t {
  kOnnxFloat = 1, kOnnxUint8 = 2, kOnnxInt8 = 3, kOnnxInt32 = 6, kOnnxInt64 = 7, kOnnxBool = 9, kOnnxDouble = 11,
};

// An ONNX model declaring more than this is not a detector we could run, and likely a corrupt file.
constexpr size_t kMaxNodes = 1 << 20;
constexpr int64_t kMinOpset = 11;
constexpr int64_t kMaxOpset = 17;

Status Corrupt(const std::string& what) { return MakeError(StatusCode::kCorruptData, what); }

Expected<std::string> ReadString(const WireField& field, const char* what) {
  VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kLengthDelimited, what));
  return std::string(field.bytes);
}

// Raw little-endian elements of `element_size` bytes, each converted by `convert`.
template <typename Out, typename Stored>
void DecodeRaw(std::string_view raw, std::vector<Out>* out) {
  const size_t n = raw.size() / sizeof(Stored);
  out->resize(n);
  for (size_t k = 0; k < n; ++k) {
    Stored v;
    std::memcpy(&v, raw.data() + k * sizeof(Stored), sizeof(Stored));
    (*out)[k] = static_cast<Out>(v);
  }
}

Expected<Tensor> ParseTensor(std::string_view bytes, std::string* name_out) {
  ProtoReader reader(bytes);
  std::vector<int64_t> dims;
  int64_t data_type = 0;
  std::string name;
  std::string_view raw;
  bool has_raw = false;
  bool external = false;
  std::vector<float> floats;
  std::vector<int64_t> ints;  // int32_data (also carries int8/uint8/bool) and int64_data
  std::vector<double> doubles;
  WireField field;
  while (!reader.done()) {
    VS_RETURN_IF_ERROR(reader.Next(&field));
    switch (field.number) {
      case 1: VS_RETURN_IF_ERROR(ProtoReader::AppendInt64s(field, &dims)); break;
      case 2: VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kVarint, "TensorProto.data_type")); data_type = static_cast<int64_t>(field.value); break;
      case 4: VS_RETURN_IF_ERROR(ProtoReader::AppendFloats(field, &floats)); break;
      case 5: VS_RETURN_IF_ERROR(ProtoReader::AppendInt64s(field, &ints)); break;
      case 7: VS_RETURN_IF_ERROR(ProtoReader::AppendInt64s(field, &ints)); break;
      case 8: { VS_ASSIGN_OR_RETURN(name, ReadString(field, "TensorProto.name")); break; }
      case 9: VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kLengthDelimited, "TensorProto.raw_data")); raw = field.bytes; has_raw = true; break;
      case 10: VS_RETURN_IF_ERROR(ProtoReader::AppendDoubles(field, &doubles)); break;
      case 14: external = field.value == 1; break;
      default: break;
    }
  }
  if (name_out) *name_out = name;
  const std::string where = "tensor '" + name + "'";
  if (external) return MakeError(StatusCode::kUnsupported, where + " keeps its data in an external file, which is not supported");
  auto count = CheckedElementCount(dims);
  if (!count.ok()) return count.status().WithContext(where);
  size_t element_size = 0;
  switch (data_type) {
    case kOnnxFloat: case kOnnxInt32: element_size = 4; break;
    case kOnnxInt64: case kOnnxDouble: element_size = 8; break;
    case kOnnxUint8: case kOnnxInt8: case kOnnxBool: element_size = 1; break;
    default: return MakeError(StatusCode::kUnsupported, where + " has ONNX data type " + std::to_string(data_type) + ", which is not supported (float32, double, int8/16/32/64, uint8, bool are)");
  }
  const size_t expected = static_cast<size_t>(*count);
  Tensor t;
  t.shape = dims;
  const bool is_float = data_type == kOnnxFloat || data_type == kOnnxDouble;
  t.dtype = is_float ? DType::kFloat32 : DType::kInt64;
  if (has_raw) {
    // The declared dims must be backed by bytes actually present: no allocation beyond the file's size.
    if (raw.size() != expected * element_size)
      return Corrupt(where + " declares " + std::to_string(expected) + " elements but carries " + std::to_string(raw.size()) + " bytes of raw data");
    switch (data_type) {
      case kOnnxFloat: DecodeRaw<float, float>(raw, &t.f); break;
      case kOnnxDouble: DecodeRaw<float, double>(raw, &t.f); break;
      case kOnnxInt32: DecodeRaw<int64_t, int32_t>(raw, &t.i); break;
      case kOnnxInt64: DecodeRaw<int64_t, int64_t>(raw, &t.i); break;
      case kOnnxUint8: case kOnnxBool: DecodeRaw<int64_t, uint8_t>(raw, &t.i); break;
      case kOnnxInt8: DecodeRaw<int64_t, int8_t>(raw, &t.i); break;
    }
    return t;
  }
  size_t present = 0;
  if (data_type == kOnnxFloat) {
    present = floats.size();
    t.f = std::move(floats);
  } else if (data_type == kOnnxDouble) {
    present = doubles.size();
    t.f.assign(doubles.begin(), doubles.end());
  } else {
    present = ints.size();
    t.i = std::move(ints);
    if (data_type == kOnnxInt32) for (int64_t& v : t.i) v = static_cast<int32_t>(v);
  }
  if (present != expected)
    return Corrupt(where + " declares " + std::to_string(expected) + " elements but carries " + std::to_string(present));
  return t;
}

Expected<Attribute> ParseAttribute(std::string_view bytes, std::string* name) {
  ProtoReader reader(bytes);
  Attribute a;
  int64_t declared_type = 0;
  bool has_f = false, has_i = false, has_s = false, has_t = false, has_g = false;
  WireField field;
  while (!reader.done()) {
    VS_RETURN_IF_ERROR(reader.Next(&field));
    switch (field.number) {
      case 1: { VS_ASSIGN_OR_RETURN(*name, ReadString(field, "AttributeProto.name")); break; }
      case 2: {
        VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kFixed32, "AttributeProto.f"));
        uint32_t bits = static_cast<uint32_t>(field.value);
        std::memcpy(&a.f, &bits, 4);
        has_f = true;
        break;
      }
      case 3: VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kVarint, "AttributeProto.i")); a.i = static_cast<int64_t>(field.value); has_i = true; break;
      case 4: { VS_ASSIGN_OR_RETURN(a.s, ReadString(field, "AttributeProto.s")); has_s = true; break; }
      case 5: {
        VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kLengthDelimited, "AttributeProto.t"));
        VS_ASSIGN_OR_RETURN(a.t, ParseTensor(field.bytes, nullptr));
        has_t = true;
        break;
      }
      case 6: has_g = true; break;  // subgraphs (If/Loop bodies): no supported op takes one
      case 7: VS_RETURN_IF_ERROR(ProtoReader::AppendFloats(field, &a.floats)); break;
      case 8: VS_RETURN_IF_ERROR(ProtoReader::AppendInt64s(field, &a.ints)); break;
      case 9: { VS_ASSIGN_OR_RETURN(std::string s, ReadString(field, "AttributeProto.strings")); a.strings.push_back(std::move(s)); break; }
      case 20: declared_type = static_cast<int64_t>(field.value); break;
      default: break;
    }
  }
  // AttributeProto.AttributeType: 1 FLOAT, 2 INT, 3 STRING, 4 TENSOR, 5 GRAPH, 6 FLOATS, 7 INTS, 8 STRINGS.
  switch (declared_type) {
    case 1: a.kind = Attribute::Kind::kFloat; break;
    case 2: a.kind = Attribute::Kind::kInt; break;
    case 3: a.kind = Attribute::Kind::kString; break;
    case 4: a.kind = Attribute::Kind::kTensor; break;
    case 5: a.kind = Attribute::Kind::kGraph; break;
    case 6: a.kind = Attribute::Kind::kFloats; break;
    case 7: a.kind = Attribute::Kind::kInts; break;
    case 8: a.kind = Attribute::Kind::kStrings; break;
    default:  // very old writers leave the type out: infer it from what is set
      a.kind = has_f ? Attribute::Kind::kFloat : has_i ? Attribute::Kind::kInt : has_s ? Attribute::Kind::kString
             : has_t ? Attribute::Kind::kTensor : has_g ? Attribute::Kind::kGraph : !a.floats.empty() ? Attribute::Kind::kFloats
             : !a.strings.empty() ? Attribute::Kind::kStrings : Attribute::Kind::kInts;
  }
  return a;
}

Expected<Node> ParseNode(std::string_view bytes) {
  ProtoReader reader(bytes);
  Node node;
  std::string domain;
  WireField field;
  while (!reader.done()) {
    VS_RETURN_IF_ERROR(reader.Next(&field));
    switch (field.number) {
      case 1: { VS_ASSIGN_OR_RETURN(std::string s, ReadString(field, "NodeProto.input")); node.inputs.push_back(std::move(s)); break; }
      case 2: { VS_ASSIGN_OR_RETURN(std::string s, ReadString(field, "NodeProto.output")); node.outputs.push_back(std::move(s)); break; }
      case 3: { VS_ASSIGN_OR_RETURN(node.name, ReadString(field, "NodeProto.name")); break; }
      case 4: { VS_ASSIGN_OR_RETURN(node.op_type, ReadString(field, "NodeProto.op_type")); break; }
      case 5: {
        VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kLengthDelimited, "NodeProto.attribute"));
        std::string name;
        VS_ASSIGN_OR_RETURN(Attribute a, ParseAttribute(field.bytes, &name));
        node.attributes[name] = std::move(a);
        break;
      }
      case 7: { VS_ASSIGN_OR_RETURN(domain, ReadString(field, "NodeProto.domain")); break; }
      default: break;
    }
  }
  if (!domain.empty() && domain != "ai.onnx")
    return MakeError(StatusCode::kUnsupported, node.Describe() + " is in operator domain '" + domain + "', which is not supported");
  return node;
}

// ValueInfoProto -> name, elem type, shape (dim_param and missing dims become -1).
Expected<ValueInfo> ParseValueInfo(std::string_view bytes, int64_t* elem_type) {
  ValueInfo info;
  *elem_type = 0;
  ProtoReader reader(bytes);
  WireField field;
  while (!reader.done()) {
    VS_RETURN_IF_ERROR(reader.Next(&field));
    if (field.number == 1) {
      VS_ASSIGN_OR_RETURN(info.name, ReadString(field, "ValueInfoProto.name"));
    } else if (field.number == 2) {  // TypeProto
      VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kLengthDelimited, "ValueInfoProto.type"));
      ProtoReader type_reader(field.bytes);
      WireField type_field;
      while (!type_reader.done()) {
        VS_RETURN_IF_ERROR(type_reader.Next(&type_field));
        if (type_field.number != 1) continue;  // TypeProto.tensor_type
        VS_RETURN_IF_ERROR(ProtoReader::Expect(type_field, WireType::kLengthDelimited, "TypeProto.tensor_type"));
        ProtoReader tensor_reader(type_field.bytes);
        WireField tf;
        while (!tensor_reader.done()) {
          VS_RETURN_IF_ERROR(tensor_reader.Next(&tf));
          if (tf.number == 1) {
            *elem_type = static_cast<int64_t>(tf.value);
          } else if (tf.number == 2) {  // TensorShapeProto
            VS_RETURN_IF_ERROR(ProtoReader::Expect(tf, WireType::kLengthDelimited, "TypeProto.Tensor.shape"));
            ProtoReader shape_reader(tf.bytes);
            WireField sf;
            while (!shape_reader.done()) {
              VS_RETURN_IF_ERROR(shape_reader.Next(&sf));
              if (sf.number != 1) continue;
              VS_RETURN_IF_ERROR(ProtoReader::Expect(sf, WireType::kLengthDelimited, "TensorShapeProto.dim"));
              ProtoReader dim_reader(sf.bytes);
              WireField df;
              int64_t dim = -1;
              while (!dim_reader.done()) {
                VS_RETURN_IF_ERROR(dim_reader.Next(&df));
                if (df.number == 1 && df.type == WireType::kVarint) dim = static_cast<int64_t>(df.value);
              }
              info.shape.push_back(dim < 0 ? -1 : dim);
            }
          }
        }
      }
    }
  }
  return info;
}

Status ParseGraph(std::string_view bytes, Graph* graph) {
  ProtoReader reader(bytes);
  std::vector<std::pair<ValueInfo, int64_t>> declared_inputs, declared_outputs;
  WireField field;
  while (!reader.done()) {
    VS_RETURN_IF_ERROR(reader.Next(&field));
    switch (field.number) {
      case 1: {
        VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kLengthDelimited, "GraphProto.node"));
        if (graph->nodes.size() >= kMaxNodes) return Corrupt("more than " + std::to_string(kMaxNodes) + " nodes");
        VS_ASSIGN_OR_RETURN(Node node, ParseNode(field.bytes));
        if (node.name.empty()) node.name = node.op_type + "_" + std::to_string(graph->nodes.size());
        graph->nodes.push_back(std::move(node));
        break;
      }
      case 5: {
        VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kLengthDelimited, "GraphProto.initializer"));
        std::string name;
        VS_ASSIGN_OR_RETURN(Tensor t, ParseTensor(field.bytes, &name));
        graph->initializers[name] = std::move(t);
        break;
      }
      case 11: case 12: {
        VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kLengthDelimited, "GraphProto.input/output"));
        int64_t elem_type = 0;
        VS_ASSIGN_OR_RETURN(ValueInfo info, ParseValueInfo(field.bytes, &elem_type));
        (field.number == 11 ? declared_inputs : declared_outputs).emplace_back(std::move(info), elem_type);
        break;
      }
      case 15: return MakeError(StatusCode::kUnsupported, "sparse initializers are not supported");
      default: break;
    }
  }
  for (auto& [info, elem_type] : declared_inputs) {
    if (graph->initializers.count(info.name)) continue;  // IR < 4 lists initializers as inputs too
    if (elem_type != kOnnxFloat)
      return MakeError(StatusCode::kUnsupported, "graph input '" + info.name + "' has ONNX type " + std::to_string(elem_type) + "; only float32 inputs are supported");
    std::vector<int64_t> concrete = info.shape;
    for (int64_t& d : concrete) d = d < 0 ? 1 : d;
    auto count = CheckedElementCount(concrete);
    if (!count.ok()) return count.status().WithContext("graph input '" + info.name + "'");
    graph->inputs.push_back(std::move(info));
  }
  for (auto& [info, elem_type] : declared_outputs) {
    if (elem_type != kOnnxFloat && elem_type != 0)
      return MakeError(StatusCode::kUnsupported, "graph output '" + info.name + "' has ONNX type " + std::to_string(elem_type) + "; only float32 outputs are supported");
    graph->outputs.push_back(std::move(info));
  }
  if (graph->inputs.empty()) return Corrupt("the graph has no runtime input");
  if (graph->outputs.empty()) return Corrupt("the graph has no output");
  return Status::Ok();
}

}  // namespace

Expected<Model> ParseOnnx(std::string_view bytes, const std::string& origin) {
  Model model;
  bool have_graph = false;
  bool have_default_opset = false;
  auto parse = [&]() -> Status {
    ProtoReader reader(bytes);
    WireField field;
    while (!reader.done()) {
      VS_RETURN_IF_ERROR(reader.Next(&field));
      switch (field.number) {
        case 1: VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kVarint, "ModelProto.ir_version")); model.ir_version = static_cast<int64_t>(field.value); break;
        case 2: { VS_ASSIGN_OR_RETURN(model.producer, ReadString(field, "ModelProto.producer_name")); break; }
        case 7:
          VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kLengthDelimited, "ModelProto.graph"));
          VS_RETURN_IF_ERROR(ParseGraph(field.bytes, &model.graph));
          have_graph = true;
          break;
        case 8: {  // OperatorSetIdProto
          VS_RETURN_IF_ERROR(ProtoReader::Expect(field, WireType::kLengthDelimited, "ModelProto.opset_import"));
          ProtoReader opset_reader(field.bytes);
          WireField of;
          std::string domain;
          int64_t version = 0;
          while (!opset_reader.done()) {
            VS_RETURN_IF_ERROR(opset_reader.Next(&of));
            if (of.number == 1) { VS_ASSIGN_OR_RETURN(domain, ReadString(of, "OperatorSetIdProto.domain")); }
            if (of.number == 2) version = static_cast<int64_t>(of.value);
          }
          if (domain.empty() || domain == "ai.onnx") {
            model.opset = version;
            have_default_opset = true;
          }
          break;
        }
        default: break;
      }
    }
    return Status::Ok();
  };
  Status parsed = parse();
  if (!parsed.ok()) return parsed.WithContext(origin + ": not a valid ONNX model");
  // ONNX has no magic number: a model is recognised by the fields every exporter writes.
  if (model.ir_version <= 0 || !have_graph || !have_default_opset)
    return MakeError(StatusCode::kCorruptData, origin + ": not an ONNX model (no ir_version, graph or default-domain opset_import)");
  if (model.opset < kMinOpset || model.opset > kMaxOpset)
    return MakeError(StatusCode::kUnsupported, origin + ": ONNX opset " + std::to_string(model.opset) + " is not supported (" +
                                                   std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) + " are)");
  for (const Node& node : model.graph.nodes) {
    if (!IsSupportedOp(node.op_type))
      return MakeError(StatusCode::kUnsupported, origin + ": unknown or unsupported operator " + node.op_type + " (node '" + node.name + "')");
  }
  Status sorted = SortTopologically(&model.graph);
  if (!sorted.ok()) return sorted.WithContext(origin);
  return model;
}

Expected<Model> LoadOnnx(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return MakeError(StatusCode::kNotFound, path + ": cannot open");
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return MakeError(StatusCode::kIoError, path + ": read failed");
  const std::string bytes = contents.str();
  return ParseOnnx(bytes, path);
}

}  // namespace vidscan::infer
