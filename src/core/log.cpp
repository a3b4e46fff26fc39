#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace vidscan {

void InitLogging(spdlog::level::level_enum level) {
  auto logger = spdlog::stderr_color_mt("vidscan");
  logger->set_pattern("%^[%H:%M:%S.%e %l]%$ %v");
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

}  // namespace vidscan
