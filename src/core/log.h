// Logging goes through spdlog (header-only build); this header fixes the format once for the whole program.
#pragma once

#include <spdlog/spdlog.h>

namespace vidscan {

// Logs go to stderr so that stdout stays clean for machine output (--json).
void InitLogging(spdlog::level::level_enum level);

}  // namespace vidscan
