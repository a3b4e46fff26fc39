// Errors as values across module boundaries: a Status carries a code and a message that names the file,
// frame and call that failed; Expected<T> is a value or such a Status.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace vidscan {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller asked for something that makes no sense
  kNotFound,         // a file, stream or device that is not there
  kUnsupported,      // a codec, format or feature this build or this GPU cannot handle
  kCorruptData,      // the input is damaged or not what it claims to be
  kIoError,          // reading or writing failed
  kUnavailable,      // a driver, GPU or library is missing at run time
  kOutOfMemory,
  kInternal,         // a bug or an unexpected library failure
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "unsupported: foo.mkv: codec vp9 is not supported"
  std::string ToString() const;
  // Adds outer context: "<context>: <message>".
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : state_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Status status) : state_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(state_).ok() && "Expected<T> built from an OK status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(state_);
  }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

inline Status MakeError(StatusCode code, std::string message) { return {code, std::move(message)}; }

}  // namespace vidscan

#define VS_CONCAT_INNER(a, b) a##b
#define VS_CONCAT(a, b) VS_CONCAT_INNER(a, b)

// Returns the status from the enclosing function if it is an error.
#define VS_RETURN_IF_ERROR(expr)              \
  do {                                        \
    ::vidscan::Status vs_status_ = (expr);    \
    if (!vs_status_.ok()) return vs_status_;  \
  } while (0)

// VS_ASSIGN_OR_RETURN(auto x, MakeX()); declares x from the value or returns the error.
#define VS_ASSIGN_OR_RETURN(lhs, expr) VS_ASSIGN_OR_RETURN_IMPL(VS_CONCAT(vs_expected_, __LINE__), lhs, expr)
#define VS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
