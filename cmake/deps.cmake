# Header-only use of the well-kept libraries, so the binary carried to a GPU machine needs none of them
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

add_library(vidscan_thirdparty INTERFACE)
target_link_libraries(vidscan_thirdparty INTERFACE fmt::fmt-header-only spdlog::spdlog_header_only
                      CLI11::CLI11 nlohmann_json::nlohmann_json SQLite::SQLite3 Threads::Threads
                      ${CMAKE_DL_LIBS} m)
target_include_directories(vidscan_thirdparty SYSTEM INTERFACE ${FFNVCODEC_INCLUDE_DIR})
