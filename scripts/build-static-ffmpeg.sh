#!/usr/bin/env bash
# Builds a minimal STATIC FFmpeg (libavformat, libavcodec, libswscale, libavutil) from Debian's source
# package, for vidscan binaries that must run on machines without FFmpeg packages (the GPU test machine).
#
#   scripts/build-static-ffmpeg.sh [PREFIX]      default PREFIX: third_party_build/ffmpeg-static (git-ignored)
#   cmake -DVIDSCAN_FFMPEG_PREFIX=PREFIX ...     links it (cmake/ffmpeg.cmake)
#
# Why Debian's source package (scripts/lib/debian-source.sh enables deb-src when needed): it is the
# exact FFmpeg, Debian's security patches included, that the normal build links through pkg-config, and
# the build machine reaches Debian's mirrors only.
# Idempotent: when PREFIX/lib/libavformat.a exists and PREFIX/vidscan-ffmpeg-config.txt records the same
# configuration, nothing is done. About 3 minutes on 2 cores with nasm.
#
# Environment: VIDSCAN_FFMPEG_WORK   where the source is fetched and built (third_party_build/ffmpeg-work)
#              VIDSCAN_FFMPEG_VERSION  a source version to fetch (default: apt's candidate)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=$(realpath -m "${1:-$ROOT/third_party_build/ffmpeg-static}")
WORK=$(realpath -m "${VIDSCAN_FFMPEG_WORK:-$ROOT/third_party_build/ffmpeg-work}")
SOURCE_SPEC=ffmpeg${VIDSCAN_FFMPEG_VERSION:+=$VIDSCAN_FFMPEG_VERSION}
log() { echo "build-static-ffmpeg: $*"; }
. "$ROOT/scripts/lib/debian-source.sh"

# libffmpeg-nvenc-dev provides the ffnvcodec headers (NVDEC/CUDA driver API declarations, loaded with
# dlopen) that vidscan and FFmpeg's nvdec hwaccels use; nasm assembles FFmpeg's x86 SIMD (without it the
# software H.264/HEVC decoders run several times slower, which would distort the CPU decode baseline).
apt_install build-essential pkg-config libffmpeg-nvenc-dev
if ! command -v nasm >/dev/null; then apt_install nasm || true; fi

# Every configure flag, and why.
FLAGS=(
  # Static archives only, position independent: vidscan links them into PIE executables; with no shared
  # FFmpeg there is nothing to install or find on the target machine.
  --enable-static --disable-shared --enable-pic
  # Nothing that vidscan does not call: no ffmpeg/ffprobe programs, no docs, no network code.
  --disable-programs --disable-doc --disable-network
  # No silently picked-up external libraries (xcb, sdl, zlib, bzlib, lzma, iconv, vaapi, vdpau, ...): each
  # would become a run-time dependency that the GPU machine may lack. Consequence: zlib-compressed MOV
  # headers (cmov) and zlib/bzip2-compressed Matroska tracks are not supported (rare in practice).
  --disable-autodetect
  # iconv is in glibc but configure enables it regardless; it only serves subtitle charset conversion.
  --disable-iconv
  # Libraries vidscan does not link.
  --disable-avdevice --disable-avfilter --disable-swresample --disable-postproc
  # Start from no components and add back only the ones vidscan uses; configure adds what they select
  # (h264/hevc DSP, golomb, cabac, riffdec, iso_media, ...).
  --disable-everything
  # Containers of the archives we process; raw Annex-B H.264/HEVC elementary streams; obu = raw AV1
  # (low-overhead bitstream format; it selects the av1_frame_merge bsf).
  --enable-demuxer=mov,matroska,mpegts,avi,h264,hevc,obu
  # Parsers: split and describe packets for the demuxers and for NVDEC (which takes whole access units).
  --enable-parser=h264,hevc,av1
  # MP4/MKV carry AVCC/HVCC length-prefixed NAL units; NVDEC wants Annex-B. extract_extradata pulls
  # parameter sets out of in-band streams (TS, raw), null is the pass-through used when none is needed.
  --enable-bsf=h264_mp4toannexb,hevc_mp4toannexb,extract_extradata,null
  # The CPU decoders (reference path and fallback without a GPU).
  --enable-decoder=h264,hevc
  # Local files only.
  --enable-protocol=file
  # ffnvcodec headers + nvdec hwaccels for H.264/HEVC: vidscan drives nvcuvid itself, so these are not on
  # its path; they cost nothing at link time (libcuda/libnvcuvid are dlopen'ed) and let FFmpeg's own NVDEC
  # path be used as a comparison. Explicit because --disable-autodetect turns them off.
  --enable-ffnvcodec --enable-nvdec --enable-hwaccel=h264_nvdec,hevc_nvdec
  # No -g: smaller archives and a faster build; the bundle strips binaries anyway.
  --disable-debug
)
if ! command -v nasm >/dev/null; then
  log "WARNING: nasm missing, building without x86 SIMD (software decode will be slow)"
  FLAGS+=(--disable-x86asm)
fi

CONFIG_RECORD="$PREFIX/vidscan-ffmpeg-config.txt"
CONFIG=$(printf 'source: %s\nflags: %s' "$SOURCE_SPEC" "${FLAGS[*]}")
build_is_current "$PREFIX/lib/libavformat.a" "$CONFIG_RECORD" "$CONFIG" && exit 0

start=$(date +%s)
# Debian's source, patches applied (enables deb-src first when needed).
SRC_DIR=$(fetch_debian_source "$SOURCE_SPEC" "$WORK/src")
VERSION=$(debian_source_version "$SRC_DIR")
log "source: $SRC_DIR (Debian $VERSION)"

# Out-of-tree build keeps the unpacked source reusable across configurations.
BUILD="$WORK/build"
rm -rf "$BUILD" && mkdir -p "$BUILD"
cd "$BUILD"
if ! "$SRC_DIR/configure" --prefix="$PREFIX" "${FLAGS[@]}" >configure.out 2>&1; then
  tail -n 30 configure.out >&2; tail -n 40 ffbuild/config.log >&2 || true; exit 1
fi
# Fail early if a component we rely on was dropped (configure silently skips unavailable ones).
for want in 'CONFIG_MOV_DEMUXER 1' 'CONFIG_MATROSKA_DEMUXER 1' 'CONFIG_H264_DECODER 1' \
            'CONFIG_HEVC_DECODER 1' 'CONFIG_H264_MP4TOANNEXB_BSF 1' 'CONFIG_SWSCALE 1' 'HAVE_PTHREADS 1'; do
  # grep reads the files itself: `cat | grep -q` fails under pipefail when grep stops early (SIGPIPE).
  grep -qs "#define $want" config.h config_components.h || { log "configure did not enable ${want% 1}"; exit 1; }
done
make -j"$(nproc)" >make.out 2>&1 || { tail -n 40 make.out >&2; exit 1; }
rm -rf "$PREFIX"
make install >install.out 2>&1 || { tail -n 20 install.out >&2; exit 1; }

# The prefix is self-contained: vidscan's build finds the ffnvcodec headers here too.
cp -r /usr/include/ffnvcodec "$PREFIX/include/"
write_build_record "$CONFIG_RECORD" "$CONFIG" "$VERSION"
log "built Debian FFmpeg $VERSION into $PREFIX in $(( $(date +%s) - start ))s ($(du -sh "$PREFIX" | cut -f1))"
