#!/usr/bin/env bash
# Build the Linux artefacts of Fast3R Studio:
#   dist/fast3r-studio/                               PyInstaller one-folder bundle (GUI + CLI)
#   dist/fast3r-studio_<version>_<arch>.deb           Debian package (installs under /opt/fast3r-studio)
#   dist/fast3r-studio-<version>-linux-x86_64.tar.gz  the bundle as a tarball (unpack anywhere, run)
#
# Usage: packaging/build_linux.sh [--skip-bundle]
#   --skip-bundle   reuse an existing dist/fast3r-studio (only re-make the .deb and the .tar.gz)
# Environment: PYTHON (default: python; the environment with the app, torch and pyinstaller installed),
#   DEB_MAINTAINER (the .deb's Maintainer field; default: a placeholder),
#   DEB_COMPRESSION (zstd, the default, or xz: 10 % smaller, ten times slower)
#
# Needs: pyinstaller (pip install -e ".[gui,packaging]"), dpkg-deb, binutils (strip, objdump, readelf).
# Prints the time and size of every step; packaging/README.md records them.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python}"
SKIP_BUNDLE=0
for arg in "$@"; do
    case "$arg" in
        --skip-bundle) SKIP_BUNDLE=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown option: $arg" >&2; exit 2 ;;
    esac
done

VERSION="$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
BUNDLE="dist/fast3r-studio"
DEB="dist/fast3r-studio_${VERSION}_${ARCH}.deb"
TARBALL="dist/fast3r-studio-${VERSION}-linux-x86_64.tar.gz"
STAGE="build/deb/fast3r-studio_${VERSION}_${ARCH}"

step_start=0
step() { step_start=$(date +%s.%N); echo "== $*"; }
step_done() { awk -v a="$step_start" -v b="$(date +%s.%N)" 'BEGIN { printf "   done in %.1f s\n", b - a }'; }
human() { numfmt --to=iec --suffix=B --format='%.1f' "$1"; }

# ---- 1. the bundle ---------------------------------------------------------------------------------
if [ "$SKIP_BUNDLE" = 0 ]; then
    step "PyInstaller bundle ($BUNDLE)"
    [ -f resources/icons/fast3r-studio.ico ] || "$PYTHON" packaging/make_icon.py
    "$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
        packaging/fast3r_studio.spec
    step_done
fi
[ -x "$BUNDLE/fast3r-studio" ] && [ -x "$BUNDLE/fast3r" ] || { echo "no bundle in $BUNDLE" >&2; exit 1; }
"$BUNDLE/fast3r" --version
echo "   bundle: $(human "$(du -sb "$BUNDLE" | cut -f1)") in $(find "$BUNDLE" -type f | wc -l) files"

# ---- 2. the .deb -----------------------------------------------------------------------------------
step "Debian package ($DEB)"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/mime/packages" "$STAGE/usr/share/doc/fast3r-studio"
# hard links: no second GB on disk (PyInstaller replaces dist/ as a whole, never edits files in place)
cp -al "$BUNDLE" "$STAGE/opt/fast3r-studio" 2>/dev/null || cp -a "$BUNDLE" "$STAGE/opt/fast3r-studio"
for name in fast3r-studio fast3r; do
    sed "s/@NAME@/$name/g" packaging/linux/launcher.sh > "$STAGE/usr/bin/$name"
    chmod 0755 "$STAGE/usr/bin/$name"
done
install -m 0644 packaging/linux/fast3r-studio.desktop "$STAGE/usr/share/applications/fast3r-studio.desktop"
install -m 0644 packaging/linux/fast3r-studio-mime.xml "$STAGE/usr/share/mime/packages/fast3r-studio.xml"
for size in 16 32 48 128 256; do
    for kind in apps mimetypes; do
        mkdir -p "$STAGE/usr/share/icons/hicolor/${size}x${size}/$kind"
    done
    install -m 0644 "resources/icons/fast3r-studio-$size.png" \
        "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps/fast3r-studio.png"
    install -m 0644 "resources/icons/fast3r-studio-$size.png" \
        "$STAGE/usr/share/icons/hicolor/${size}x${size}/mimetypes/application-x-fast3r-project.png"
done
cat > "$STAGE/usr/share/doc/fast3r-studio/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fast3r-studio
Comment: Fast3R Studio $VERSION. /opt/fast3r-studio/_internal holds Python and the third-party
 libraries the app runs on (PyTorch, Qt/PySide6, VisPy, NumPy, SciPy, OpenCV, ...), each under its
 own licence (see the *.dist-info folders there). The bundled demo model is Apache-2.0. The published
 Fast3R weights are not in this package: the app downloads them after the user accepts their licence.

Files: *
License: Apache-2.0
EOF
install -m 0755 packaging/linux/postinst "$STAGE/DEBIAN/postinst"
install -m 0755 packaging/linux/postrm "$STAGE/DEBIAN/postrm"
# no group/other write bits anywhere (dpkg-deb --root-owner-group makes everything root:root)
chmod -R u+rwX,go+rX,go-w "$STAGE"

# libc6 lower bound: the newest GLIBC_x.y symbol version any bundled binary references
glibc="$(find "$BUNDLE" -type f \( -name '*.so*' -o -perm -u+x \) -exec objdump -T {} + 2>/dev/null \
    | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1)"
installed_kb="$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)"
# Runtime libraries the bundle does not carry (PyInstaller leaves out libc, libGL/libEGL, libxcb,
# libdrm, libwayland-*: they must match the system's drivers and X server). libxkbcommon-x11,
# libxcb-cursor, fontconfig and dbus are bundled from the build machine, the packages stay in Depends
# for their data files (/etc/fonts, xkb data) and as a safety net. packaging/README.md explains.
cat > "$STAGE/DEBIAN/control" <<EOF
Package: fast3r-studio
Version: $VERSION
Architecture: $ARCH
Maintainer: ${DEB_MAINTAINER:-Fast3R Studio developers <fast3r-studio@example.invalid>}
Installed-Size: $installed_kb
Depends: libc6 (>= ${glibc:-2.28}), libgl1, libegl1, libxcb1, libdrm2, libxkbcommon-x11-0, libxcb-cursor0, libfontconfig1, fontconfig, libdbus-1-3
Recommends: libgl1-mesa-dri, libwayland-client0, libwayland-cursor0, libwayland-egl1, fonts-dejavu-core
Section: graphics
Priority: optional
Description: 3D point clouds and camera poses from unposed photos (Fast3R)
 Fast3R Studio reconstructs a point cloud and the camera poses from a folder
 of unordered photos or a video with the Fast3R model, shows them in a 3D
 viewer with a confidence filter, and exports PLY, GLB, COLMAP and
 Nerfstudio files. Includes the desktop app (fast3r-studio) and the command
 line (fast3r), a small demo model and sample scenes. The published Fast3R
 weights are downloaded by the app after the user accepts their licence.
EOF
rm -f "$DEB"
# zstd -12 by default: xz -6 makes a 10 % smaller file but took 12 min instead of about 1 min on the
# 2-core build host. dpkg reads zstd since 1.21.18 (Debian 12, Ubuntu 21.10), older than the libc6
# bound above anyway. DEB_COMPRESSION=xz for the smallest file.
threads=()
dpkg-deb --help | grep -q -- --threads-max && threads=(--threads-max="$(nproc)")
case "${DEB_COMPRESSION:-zstd}" in
    zstd) compress=(-Zzstd -z12) ;;
    xz) compress=(-Zxz -z6) ;;
    *) echo "DEB_COMPRESSION must be zstd or xz" >&2; exit 2 ;;
esac
dpkg-deb --root-owner-group "${compress[@]}" "${threads[@]}" --build "$STAGE" "$DEB"
step_done
echo "   $DEB: $(human "$(stat -c %s "$DEB")") (installed $(human $((installed_kb * 1024))))"
dpkg-deb --field "$DEB" Package Version Architecture Depends

# ---- 3. the tarball --------------------------------------------------------------------------------
step "tarball ($TARBALL)"
top="fast3r-studio-$VERSION"
cat > build/INSTALL-linux.txt <<EOF
Fast3R Studio $VERSION for Linux x86_64 (one-folder bundle, no Python needed)

Run:   ./fast3r-studio            the desktop app (opens a sample scene with the demo model)
       ./fast3r --help            the command line
Needs the system's OpenGL/EGL and X11/Wayland client libraries (on Debian/Ubuntu: libgl1 libegl1
libxcb1 libdrm2 libfontconfig1 fontconfig libgl1-mesa-dri). The .deb package installs the same
bundle under /opt with a menu entry and the .f3r file association.
EOF
rm -f "$TARBALL"
compressor=gzip
command -v pigz >/dev/null 2>&1 && compressor=pigz
tar --owner=0 --group=0 --numeric-owner -C dist \
    --transform "s,^fast3r-studio,$top," -cf - fast3r-studio \
    -C "$REPO/build" --transform "s,^INSTALL-linux.txt,$top/INSTALL.txt," INSTALL-linux.txt \
    | "$compressor" -6 > "$TARBALL"
step_done
echo "   $TARBALL: $(human "$(stat -c %s "$TARBALL")")"
