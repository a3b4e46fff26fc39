#include "detect/model_description.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

namespace vidscan {
namespace {

using nlohmann::json;

const std::vector<std::string>& CocoClassNames() {
  static const std::vector<std::string> kNames = {
      "person",        "bicycle",      "car",           "motorcycle",    "airplane",     "bus",
      "train",         "truck",        "boat",          "traffic light", "fire hydrant", "stop sign",
      "parking meter", "bench",        "bird",          "cat",           "dog",          "horse",
      "sheep",         "cow",          "elephant",      "bear",          "zebra",        "giraffe",
      "backpack",      "umbrella",     "handbag",       "tie",           "suitcase",     "frisbee",
      "skis",          "snowboard",    "sports ball",   "kite",          "baseball bat", "baseball glove",
      "skateboard",    "surfboard",    "tennis racket", "bottle",        "wine glass",   "cup",
      "fork",          "knife",        "spoon",         "bowl",          "banana",       "apple",
      "sandwich",      "orange",       "broccoli",      "carrot",        "hot dog",      "pizza",
      "donut",         "cake",         "chair",         "couch",         "potted plant", "bed",
      "dining table",  "toilet",       "tv",            "laptop",        "mouse",        "remote",
      "keyboard",      "cell phone",   "microwave",     "oven",          "toaster",      "sink",
      "refrigerator",  "book",         "clock",         "vase",          "scissors",     "teddy bear",
      "hair drier",    "toothbrush"};
  return kNames;
}

Status FieldError(const std::string& source, const std::string& field, const std::string& what) {
  return MakeError(StatusCode::kInvalidArgument, source + ": field '" + field + "': " + what);
}

// Reads a number into `out` when `key` is present in `obj`; errors name the field by its dotted path.
struct Reader {
  const std::string& source;

  Status Number(const json& obj, const char* key, const std::string& path, float* out, float lo, float hi) const {
    if (!obj.contains(key)) return Status::Ok();
    const json& v = obj.at(key);
    if (!v.is_number()) return FieldError(source, path, "must be a number, got " + std::string(v.type_name()));
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) {
      return FieldError(source, path, "must be in [" + Short(lo) + ", " + Short(hi) + "], got " + v.dump());
    }
    *out = static_cast<float>(d);
    return Status::Ok();
  }
  Status Integer(const json& obj, const char* key, const std::string& path, int* out, int lo, int hi) const {
    if (!obj.contains(key)) return Status::Ok();
    const json& v = obj.at(key);
    if (!v.is_number_integer()) return FieldError(source, path, "must be an integer, got " + v.dump());
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) {
      return FieldError(source, path, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v.dump());
    }
    *out = static_cast<int>(i);
    return Status::Ok();
  }
  // A number (the same for the three channels) or an array of three.
  Status Triple(const json& obj, const char* key, const std::string& path, std::array<float, 3>* out, float lo,
                float hi) const {
    if (!obj.contains(key)) return Status::Ok();
    const json& v = obj.at(key);
    if (v.is_number()) {
      float x = 0;
      VS_RETURN_IF_ERROR(Number(obj, key, path, &x, lo, hi));
      *out = {x, x, x};
      return Status::Ok();
    }
    if (!v.is_array() || v.size() != 3) return FieldError(source, path, "must be a number or an array of 3 numbers");
    for (size_t c = 0; c < 3; ++c) {
      json wrapper = {{"v", v[c]}};
      VS_RETURN_IF_ERROR(Number(wrapper, "v", path + "[" + std::to_string(c) + "]", &(*out)[c], lo, hi));
    }
    return Status::Ok();
  }
  Status Object(const json& obj, const char* key, const std::string& path) const {
    if (obj.contains(key) && !obj.at(key).is_object()) return FieldError(source, path, "must be an object");
    return Status::Ok();
  }
  static std::string Short(float x) {
    std::ostringstream s;
    s << x;
    return s.str();
  }
};

Status CheckKnownKeys(const json& obj, const std::string& source, const std::string& prefix,
                      std::initializer_list<const char*> known) {
  for (const auto& [key, value] : obj.items()) {
    bool found = false;
    for (const char* k : known) found = found || key == k;
    if (!found) return FieldError(source, prefix + key, "unknown field (a typo?)");
  }
  return Status::Ok();
}

}  // namespace

const char* ModelFamilyName(ModelFamily family) {
  switch (family) {
    case ModelFamily::kDetectNetV2: return "detectnet_v2";
    case ModelFamily::kYolox: return "yolox";
    case ModelFamily::kYoloV8: return "yolov8";
  }
  return "?";
}

ModelDescription DefaultModelDescription(ModelFamily family) {
  ModelDescription d;
  d.family = family;
  PreprocessParams& in = d.input;
  switch (family) {
    case ModelFamily::kYolox:
      // Megvii YOLOX export: BGR 0..255, no mean/std, letterbox at the top-left, pad 114; its demo NMS
      // uses IoU 0.45.
      in.width = in.height = 640;
      in.order = ChannelOrder::kBGR;
      in.resize = ResizeMode::kLetterbox;
      in.placement = LetterboxPlacement::kTopLeft;
      in.pad = {114, 114, 114};
      in.antialias = false;  // trained on cv2.resize(INTER_LINEAR) inputs
      d.class_names = CocoClassNames();
      d.score_thresholds.assign(d.class_names.size(), 0.3f);
      d.nms.iou_threshold = 0.45f;
      break;
    case ModelFamily::kYoloV8:
      // Ultralytics: RGB scaled to 0..1, centred letterbox with pad 114; predict defaults conf 0.25, IoU 0.7.
      in.width = in.height = 640;
      in.order = ChannelOrder::kRGB;
      in.scale = {1 / 255.0f, 1 / 255.0f, 1 / 255.0f};
      in.resize = ResizeMode::kLetterbox;
      in.placement = LetterboxPlacement::kCentre;
      in.pad = {114, 114, 114};
      in.antialias = false;  // trained on cv2.resize(INTER_LINEAR) inputs
      d.class_names = CocoClassNames();
      d.score_thresholds.assign(d.class_names.size(), 0.25f);
      d.nms.iou_threshold = 0.7f;
      break;
    case ModelFamily::kDetectNetV2:
      // PeopleNet (TAO): 960x544 RGB scaled to 0..1, stretched; DeepStream's PeopleNet config uses a
      // pre-cluster threshold of 0.4 and NMS clustering at IoU 0.5.
      in.width = 960;
      in.height = 544;
      in.order = ChannelOrder::kRGB;
      in.scale = {1 / 255.0f, 1 / 255.0f, 1 / 255.0f};
      in.resize = ResizeMode::kStretch;
      d.class_names = {"person", "bag", "face"};
      d.score_thresholds.assign(d.class_names.size(), 0.4f);
      d.nms.iou_threshold = 0.5f;
      break;
  }
  return d;
}

std::string ModelDescriptionPathFor(const std::string& onnx_path) {
  const size_t slash = onnx_path.find_last_of('/');
  const size_t dot = onnx_path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return onnx_path + ".json";
  return onnx_path.substr(0, dot) + ".json";
}

Expected<ModelDescription> ParseModelDescription(const std::string& json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    return MakeError(StatusCode::kInvalidArgument, source + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) return MakeError(StatusCode::kInvalidArgument, source + ": must be a JSON object");
  VS_RETURN_IF_ERROR(CheckKnownKeys(root, source, "",
                                    {"family", "input", "normalisation", "resize", "class_names",
                                     "score_threshold", "nms", "detectnet_v2"}));
  if (!root.contains("family")) return FieldError(source, "family", "missing (yolox, yolov8 or detectnet_v2)");
  if (!root["family"].is_string()) return FieldError(source, "family", "must be a string");
  const std::string family = root["family"].get<std::string>();
  ModelDescription d;
  if (family == "yolox") {
    d = DefaultModelDescription(ModelFamily::kYolox);
  } else if (family == "yolov8") {
    d = DefaultModelDescription(ModelFamily::kYoloV8);
  } else if (family == "detectnet_v2" || family == "peoplenet") {
    d = DefaultModelDescription(ModelFamily::kDetectNetV2);
  } else {
    return FieldError(source, "family", "unknown family '" + family + "' (yolox, yolov8 or detectnet_v2)");
  }

  const Reader r{source};
  for (const char* section : {"input", "normalisation", "resize", "nms", "detectnet_v2"}) {
    VS_RETURN_IF_ERROR(r.Object(root, section, section));
  }
  const json empty = json::object();
  const json& input = root.value("input", empty);
  VS_RETURN_IF_ERROR(CheckKnownKeys(input, source, "input.", {"width", "height"}));
  VS_RETURN_IF_ERROR(r.Integer(input, "width", "input.width", &d.input.width, 1, 16384));
  VS_RETURN_IF_ERROR(r.Integer(input, "height", "input.height", &d.input.height, 1, 16384));

  const json& norm = root.value("normalisation", empty);
  VS_RETURN_IF_ERROR(CheckKnownKeys(norm, source, "normalisation.", {"order", "scale", "mean", "std"}));
  if (norm.contains("order")) {
    const json& o = norm["order"];
    if (o == "RGB" || o == "rgb") {
      d.input.order = ChannelOrder::kRGB;
    } else if (o == "BGR" || o == "bgr") {
      d.input.order = ChannelOrder::kBGR;
    } else {
      return FieldError(source, "normalisation.order", "must be \"RGB\" or \"BGR\", got " + o.dump());
    }
  }
  VS_RETURN_IF_ERROR(r.Triple(norm, "scale", "normalisation.scale", &d.input.scale, -1e6f, 1e6f));
  VS_RETURN_IF_ERROR(r.Triple(norm, "mean", "normalisation.mean", &d.input.mean, -1e6f, 1e6f));
  VS_RETURN_IF_ERROR(r.Triple(norm, "std", "normalisation.std", &d.input.std, -1e6f, 1e6f));
  for (float s : d.input.std) {
    if (s == 0) return FieldError(source, "normalisation.std", "must not be 0");
  }

  const json& resize = root.value("resize", empty);
  VS_RETURN_IF_ERROR(CheckKnownKeys(resize, source, "resize.", {"mode", "placement", "pad", "antialias"}));
  if (resize.contains("antialias")) {
    if (!resize["antialias"].is_boolean()) return FieldError(source, "resize.antialias", "must be true or false");
    d.input.antialias = resize["antialias"].get<bool>();
  }
  if (resize.contains("mode")) {
    const json& m = resize["mode"];
    if (m == "letterbox") {
      d.input.resize = ResizeMode::kLetterbox;
    } else if (m == "stretch") {
      d.input.resize = ResizeMode::kStretch;
    } else {
      return FieldError(source, "resize.mode", "must be \"letterbox\" or \"stretch\", got " + m.dump());
    }
  }
  if (resize.contains("placement")) {
    const json& p = resize["placement"];
    if (p == "top_left") {
      d.input.placement = LetterboxPlacement::kTopLeft;
    } else if (p == "centre" || p == "center") {
      d.input.placement = LetterboxPlacement::kCentre;
    } else {
      return FieldError(source, "resize.placement", "must be \"top_left\" or \"centre\", got " + p.dump());
    }
  }
  VS_RETURN_IF_ERROR(r.Triple(resize, "pad", "resize.pad", &d.input.pad, 0, 255));

  if (root.contains("class_names")) {
    const json& names = root["class_names"];
    if (!names.is_array() || names.empty()) return FieldError(source, "class_names", "must be a non-empty array of strings");
    d.class_names.clear();
    for (size_t i = 0; i < names.size(); ++i) {
      if (!names[i].is_string()) return FieldError(source, "class_names[" + std::to_string(i) + "]", "must be a string");
      d.class_names.push_back(names[i].get<std::string>());
    }
    // A family default threshold stays, resized to the new class count.
    d.score_thresholds.assign(d.class_names.size(), d.score_thresholds.front());
  }
  if (root.contains("score_threshold")) {
    const json& t = root["score_threshold"];
    if (t.is_array()) {
      if (t.size() != d.class_names.size()) {
        return FieldError(source, "score_threshold", "has " + std::to_string(t.size()) + " entries for " +
                                                         std::to_string(d.class_names.size()) + " classes");
      }
      for (size_t c = 0; c < t.size(); ++c) {
        json wrapper = {{"v", t[c]}};
        VS_RETURN_IF_ERROR(r.Number(wrapper, "v", "score_threshold[" + std::to_string(c) + "]", &d.score_thresholds[c], 0, 1));
      }
    } else {
      float global = 0;
      VS_RETURN_IF_ERROR(r.Number(root, "score_threshold", "score_threshold", &global, 0, 1));
      d.score_thresholds.assign(d.class_names.size(), global);
    }
  }

  const json& nms = root.value("nms", empty);
  VS_RETURN_IF_ERROR(CheckKnownKeys(nms, source, "nms.", {"iou", "top_k", "max_detections", "class_aware"}));
  VS_RETURN_IF_ERROR(r.Number(nms, "iou", "nms.iou", &d.nms.iou_threshold, 0, 1));
  VS_RETURN_IF_ERROR(r.Integer(nms, "top_k", "nms.top_k", &d.nms.top_k, 1, 1 << 16));
  VS_RETURN_IF_ERROR(r.Integer(nms, "max_detections", "nms.max_detections", &d.nms.max_detections, 1, 1 << 16));
  if (nms.contains("class_aware")) {
    if (!nms["class_aware"].is_boolean()) return FieldError(source, "nms.class_aware", "must be true or false");
    d.nms.class_aware = nms["class_aware"].get<bool>();
  }

  const json& dn = root.value("detectnet_v2", empty);
  if (!dn.empty() && d.family != ModelFamily::kDetectNetV2) {
    return FieldError(source, "detectnet_v2", "only applies to family detectnet_v2, not " + family);
  }
  VS_RETURN_IF_ERROR(CheckKnownKeys(dn, source, "detectnet_v2.", {"stride", "bbox_norm", "offset"}));
  VS_RETURN_IF_ERROR(r.Integer(dn, "stride", "detectnet_v2.stride", &d.detectnet_v2.stride, 1, 1024));
  VS_RETURN_IF_ERROR(r.Number(dn, "bbox_norm", "detectnet_v2.bbox_norm", &d.detectnet_v2.bbox_norm, 1e-3f, 1e6f));
  VS_RETURN_IF_ERROR(r.Number(dn, "offset", "detectnet_v2.offset", &d.detectnet_v2.offset, -1e6f, 1e6f));

  if (d.family == ModelFamily::kYolox) {
    // Its grids run at strides 8, 16 and 32, which the decoder rebuilds from the input size.
    if (d.input.width % 32 != 0 || d.input.height % 32 != 0) {
      return FieldError(source, "input", std::string(ModelFamilyName(d.family)) + " needs a width and height divisible by 32, got " +
                                             std::to_string(d.input.width) + "x" + std::to_string(d.input.height));
    }
  }
  return d;
}

Expected<ModelDescription> LoadModelDescription(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(StatusCode::kNotFound, path + ": cannot open the model description");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return MakeError(StatusCode::kIoError, path + ": read failed");
  return ParseModelDescription(text.str(), path);
}

}  // namespace vidscan
