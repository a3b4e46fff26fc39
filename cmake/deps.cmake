# The well-kept libraries, header-only or static, so the binary carried to a GPU machine needs none of them
# installed there.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(GTest CONFIG REQUIRED)
find_package(benchmark CONFIG REQUIRED)

# SQLite (the job ledger). Static where libsqlite3.a exists: the binary is carried to GPU machines that
# may not have libsqlite3 installed. FindSQLite3 takes a preset SQLite3_LIBRARY as the library to use.
find_library(VIDSCAN_SQLITE3_STATIC NAMES libsqlite3.a)
if(VIDSCAN_SQLITE3_STATIC AND NOT SQLite3_LIBRARY)
  set(SQLite3_LIBRARY ${VIDSCAN_SQLITE3_STATIC} CACHE FILEPATH "SQLite library (static)")
endif()
find_package(SQLite3 REQUIRED)
message(STATUS "vidscan: SQLite ${SQLite3_VERSION} (${SQLite3_LIBRARIES})")

# ffnvcodec headers: NVDEC (nvcuvid) and the CUDA driver API, loaded with dlopen at run time.
find_path(FFNVCODEC_INCLUDE_DIR ffnvcodec/dynlink_loader.h
          HINTS ${VIDSCAN_FFMPEG_PREFIX}/include /usr/include /usr/local/include REQUIRED)

# fmt and spdlog, compiled once into a static library from the packages' own src/ files (third_party/:
# copies of fmt 9.1.0 src/format.cc and spdlog 1.10.0 src/*.cpp, their explicit instantiations). The
# header-only mode compiled all of fmt and spdlog again in every translation unit (~13 s per file, most of
# the build on CI's 2 cores); static, so the binary carried to a GPU machine still needs neither installed.
# Those instantiation lists belong to these versions: any other falls back to header-only.
if(fmt_VERSION VERSION_EQUAL 9.1.0 AND spdlog_VERSION VERSION_EQUAL 1.10.0)
  set(_vidscan_spdlog_src ${PROJECT_SOURCE_DIR}/third_party/spdlog-1.10.0)
  add_library(vidscan_fmt_spdlog STATIC ${PROJECT_SOURCE_DIR}/third_party/fmt-9.1.0/format.cc
              ${_vidscan_spdlog_src}/spdlog.cpp ${_vidscan_spdlog_src}/stdout_sinks.cpp
              ${_vidscan_spdlog_src}/color_sinks.cpp ${_vidscan_spdlog_src}/file_sinks.cpp
              ${_vidscan_spdlog_src}/async.cpp ${_vidscan_spdlog_src}/cfg.cpp)
  get_target_property(_vidscan_fmt_include fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  target_include_directories(vidscan_fmt_spdlog SYSTEM PUBLIC ${_vidscan_fmt_include})
  target_compile_definitions(vidscan_fmt_spdlog PUBLIC SPDLOG_COMPILED_LIB SPDLOG_FMT_EXTERNAL)
  set_target_properties(vidscan_fmt_spdlog PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(vidscan_fmt_spdlog PUBLIC Threads::Threads)
  set(VIDSCAN_FMT_SPDLOG vidscan_fmt_spdlog)
  message(STATUS "vidscan: fmt ${fmt_VERSION} and spdlog ${spdlog_VERSION} compiled once (static)")
else()
  set(VIDSCAN_FMT_SPDLOG fmt::fmt-header-only spdlog::spdlog_header_only)
  message(STATUS "vidscan: fmt ${fmt_VERSION} / spdlog ${spdlog_VERSION} header-only (third_party/ holds "
                 "the compiled-once sources of fmt 9.1.0 and spdlog 1.10.0 only)")
endif()

add_library(vidscan_thirdparty INTERFACE)
target_link_libraries(vidscan_thirdparty INTERFACE ${VIDSCAN_FMT_SPDLOG}
                      CLI11::CLI11 nlohmann_json::nlohmann_json SQLite::SQLite3 Threads::Threads
                      ${CMAKE_DL_LIBS} m)
target_include_directories(vidscan_thirdparty SYSTEM INTERFACE ${FFNVCODEC_INCLUDE_DIR})
