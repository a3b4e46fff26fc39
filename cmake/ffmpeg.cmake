# FFmpeg: the distribution's shared libraries through pkg-config (normal path), or a static minimal build
# given by VIDSCAN_FFMPEG_PREFIX (scripts/build-static-ffmpeg.sh) for machines without FFmpeg packages.
add_library(vidscan_ffmpeg INTERFACE)
find_package(PkgConfig REQUIRED)
if(VIDSCAN_FFMPEG_PREFIX)
  # The link line comes from the prefix's own .pc files with --static, so it follows whatever that FFmpeg
  # was configured with (its Libs carry the system libraries: -lm, -pthread, -latomic, ...) in the order
  # pkg-config resolves (avformat before avcodec before swscale before avutil).
  set(_ff_pc_dir ${VIDSCAN_FFMPEG_PREFIX}/lib/pkgconfig)
  set(_ff_modules libavformat libavcodec libswscale libavutil)
  foreach(_mod IN LISTS _ff_modules)
    if(NOT EXISTS ${_ff_pc_dir}/${_mod}.pc)
      message(FATAL_ERROR "static FFmpeg: ${_ff_pc_dir}/${_mod}.pc missing; run scripts/build-static-ffmpeg.sh ${VIDSCAN_FFMPEG_PREFIX}")
    endif()
  endforeach()
  # PKG_CONFIG_LIBDIR (not _PATH) so that no system libav*.pc can stand in for a missing one of the prefix.
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_LIBDIR=${_ff_pc_dir} PKG_CONFIG_PATH=
            ${PKG_CONFIG_EXECUTABLE} --static --libs ${_ff_modules}
    OUTPUT_VARIABLE _ff_libs_line OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _ff_rc ERROR_VARIABLE _ff_err)
  if(NOT _ff_rc EQUAL 0)
    message(FATAL_ERROR "static FFmpeg: pkg-config --static --libs failed in ${_ff_pc_dir}: ${_ff_err}")
  endif()
  separate_arguments(_ff_libs_args UNIX_COMMAND "${_ff_libs_line}")
  # -l<name> with lib<name>.a in the prefix becomes that archive's full path: a plain -lavcodec could
  # resolve to the system's shared libavcodec.so. Everything else (system libraries) passes through;
  # -pthread becomes Threads::Threads.
  set(_ff_link_items "")
  foreach(_arg IN LISTS _ff_libs_args)
    if(_arg MATCHES "^-l(.+)$")
      set(_name ${CMAKE_MATCH_1})
      if(EXISTS ${VIDSCAN_FFMPEG_PREFIX}/lib/lib${_name}.a)
        list(APPEND _ff_link_items ${VIDSCAN_FFMPEG_PREFIX}/lib/lib${_name}.a)
      else()
        list(APPEND _ff_link_items ${_name})
      endif()
    elseif(_arg STREQUAL "-pthread")
      list(APPEND _ff_link_items Threads::Threads)
    elseif(_arg MATCHES "^-L")
      # only the prefix's lib dir, made redundant by the full paths above
    else()
      list(APPEND _ff_link_items ${_arg})
    endif()
  endforeach()
  foreach(_lib avformat avcodec swscale avutil)
    if(NOT "${VIDSCAN_FFMPEG_PREFIX}/lib/lib${_lib}.a" IN_LIST _ff_link_items)
      message(FATAL_ERROR "static FFmpeg: lib${_lib}.a not on the link line from pkg-config: ${_ff_libs_line}")
    endif()
  endforeach()
  target_link_libraries(vidscan_ffmpeg INTERFACE ${_ff_link_items} ${CMAKE_DL_LIBS})
  target_include_directories(vidscan_ffmpeg SYSTEM INTERFACE ${VIDSCAN_FFMPEG_PREFIX}/include)
  message(STATUS "vidscan: static FFmpeg from ${VIDSCAN_FFMPEG_PREFIX}: ${_ff_link_items}")
else()
  pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libavutil libswscale)
  target_link_libraries(vidscan_ffmpeg INTERFACE PkgConfig::FFMPEG)
endif()
