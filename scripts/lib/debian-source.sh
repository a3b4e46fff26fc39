# Helpers for the static third-party builds (build-static-ffmpeg.sh, build-static-benchmark.sh) that
# vidscan binaries carried to machines without packages link: fetch a Debian source package, and skip a
# build whose recorded configuration has not changed. Sourced, not run.

_SUDO=""
if [ "$(id -u)" -ne 0 ]; then _SUDO="sudo"; fi

# apt_install PACKAGE...: installs the build tools that are missing (nothing here is needed at run time).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}" >&2
  $_SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $_SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build_is_current ARTIFACT RECORD CONFIG: true (and says so) when ARTIFACT exists and RECORD holds
# CONFIG (its `version:` line, written after the build, aside).
build_is_current() {
  [ -f "$1" ] && [ -f "$2" ] && [ "$(grep -v '^version:' "$2")" = "$3" ] || return 1
  echo "up to date: $(dirname "$(dirname "$1")") ($(grep '^version:' "$2"))"
}

# write_build_record RECORD CONFIG VERSION
write_build_record() {
  printf '%s\nversion: %s\n' "$2" "$3" >"$1"
}

_have_deb_src() {
  grep -rqsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/
}

# enable_deb_src: adds deb-src entries when there are none. It mirrors the existing deb822 entries (same
# mirrors, suites and components, so the source matches the installed binaries, security updates
# included; the machine may reach only those mirrors) into a file of its own; without any, one line for
# the release's main component.
enable_deb_src() {
  _have_deb_src && return 0
  local mirrored="" f list
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -qE '^URIs:.*(debian|ubuntu)' "$f" || continue
    mirrored+="$(sed -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' "$f")"$'\n\n'
  done
  if [ -n "$mirrored" ]; then
    list=/etc/apt/sources.list.d/vidscan-deb-src.sources
    echo "enabling deb-src in $list (mirrors of the existing deb entries)" >&2
    printf '%s' "$mirrored" | $_SUDO tee "$list" >/dev/null
  else
    list=/etc/apt/sources.list.d/vidscan-deb-src.list
    echo "enabling deb-src in $list" >&2
    echo "deb-src http://deb.debian.org/debian $(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}") main" |
      $_SUDO tee "$list" >/dev/null
  fi
  $_SUDO apt-get update -qq
}

# fetch_debian_source PACKAGE[=VERSION] DEST: unpacks the source package, Debian's patches applied, into
# DEST (reused when it already holds that spec) and prints the source directory.
fetch_debian_source() {
  local spec=$1 dest package src
  dest=$(realpath -m "$2")
  package=${spec%%=*}
  src=$(find "$dest" -mindepth 1 -maxdepth 1 -type d -name "$package-*" 2>/dev/null | head -n1)
  if [ -f "$dest/.fetched-$spec" ] && [ -n "$src" ]; then
    echo "$src"
    return 0
  fi
  apt_install dpkg-dev  # dpkg-source, which apt-get source unpacks with
  enable_deb_src
  # deb-src present but never indexed (e.g. enabled by hand without an update).
  apt-cache showsrc "$package" 2>/dev/null | grep -q '^Package:' || $_SUDO apt-get update -qq
  rm -rf "$dest" && mkdir -p "$dest"
  echo "fetching the source package $spec" >&2
  # apt's download sandbox user (_apt) may not be able to write to DEST; apt then downloads as root: fine.
  if ! (cd "$dest" && apt-get source -qq "$spec" >"$dest/apt-source.log" 2>&1); then
    cat "$dest/apt-source.log" >&2
    return 1
  fi
  src=$(find "$dest" -mindepth 1 -maxdepth 1 -type d -name "$package-*" | head -n1)
  [ -n "$src" ] || { echo "no $package-* directory after apt-get source" >&2; return 1; }
  touch "$dest/.fetched-$spec"
  echo "$src"
}

# debian_source_version SRC_DIR: the package version from debian/changelog, e.g. 7:5.1.9-0+deb12u1.
debian_source_version() {
  (cd "$1" && dpkg-parsechangelog -S Version)
}
