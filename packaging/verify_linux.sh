#!/usr/bin/env bash
# End-to-end check of the Linux installer on this machine (Debian/Ubuntu, root or sudo):
#   1. build the bundle, the .deb and the .tar.gz (packaging/build_linux.sh; skipped with --skip-build)
#   2. list every file under /opt and /usr, install the .deb with dpkg -i
#   3. check the installed files: launchers, .desktop entry (desktop-file-validate), MIME type of *.f3r
#   4. run the installed app under Xvfb on a bundled sample with the demo model until the reconstruction
#      is shown (--screenshot), and check the screenshot is a rendered scene, not a blank window
#   5. time the installed app from launch to its first visible window (packaging/startup_time.py)
#   6. run the installed CLI: fast3r reconstruct <sample> --model demo --size 224, fast3r info, models
#   7. dpkg -r, dpkg -P, and check that the file lists of /opt and /usr are the same as before
#
# Usage: sudo packaging/verify_linux.sh [--skip-build] [--keep-installed]
# Environment: PYTHON (the build environment, also used to check the screenshot with Pillow),
#   VERIFY_DIR (where the screenshot, the CLI output and the logs go; default build/verify)
# Needs: xvfb-run, xdotool, dpkg, python3. Prints "name=value" figures; exit code 0 when all pass.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python}"
SKIP_BUILD=0
KEEP=0
for arg in "$@"; do
    case "$arg" in
        --skip-build) SKIP_BUILD=1 ;;
        --keep-installed) KEEP=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option: $arg" >&2; exit 2 ;;
    esac
done
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
for tool in xvfb-run xdotool dpkg python3; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done

VERSION="$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
ARCH="$(dpkg --print-architecture)"
DEB="$REPO/dist/fast3r-studio_${VERSION}_${ARCH}.deb"
WORK="${VERIFY_DIR:-$REPO/build/verify}"
SAMPLE=/opt/fast3r-studio/_internal/resources/samples/objects_a
# -noreset: Xvfb resets when its last client disconnects, and a client connecting during the reset
# fails ("could not connect to display"); startup_time.py starts and stops the app five times
XVFB=(xvfb-run -a -s "-screen 0 1600x1000x24 -noreset")
# run a command under its own Xvfb once the server answers (xvfb-run -a can hand over a display
# before it accepts clients when other Xvfb servers start at the same time)
run_x() {
    "${XVFB[@]}" bash -c 'for _ in $(seq 150); do xdotool getdisplaygeometry >/dev/null 2>&1 && break
        sleep 0.1; done; exec "$@"' run_x "$@"
}
fail() { echo "FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# user folders of the app in a scratch place: nothing is written to the real home
rm -rf "$WORK"
mkdir -p "$WORK"
export FAST3R_CONFIG_DIR="$WORK/config" FAST3R_LOG_DIR="$WORK/logs" FAST3R_CACHE_DIR="$WORK/cache"
export QT_QPA_PLATFORM=xcb

# ---- 1. build --------------------------------------------------------------------------------------
if [ "$SKIP_BUILD" = 0 ]; then
    t=$(now)
    PYTHON="$PYTHON" packaging/build_linux.sh
    echo "build_s=$(since "$t")"
fi
[ -f "$DEB" ] || fail "no $DEB (run without --skip-build)"
echo "deb_bytes=$(stat -c %s "$DEB")"

# ---- 2. install ------------------------------------------------------------------------------------
if dpkg -s fast3r-studio >/dev/null 2>&1; then
    echo "removing an installed fast3r-studio first"
    $SUDO dpkg -P fast3r-studio
fi
snapshot() { find /opt /usr -xdev \( -type f -o -type l -o -type d \) 2>/dev/null | sort; }
snapshot > "$WORK/files_before.txt"
t=$(now)
$SUDO dpkg -i "$DEB"
echo "install_s=$(since "$t")"
dpkg -s fast3r-studio | grep -q '^Status: install ok installed' || fail "dpkg does not list the package"

# ---- 3. installed files ----------------------------------------------------------------------------
for f in /usr/bin/fast3r-studio /usr/bin/fast3r /opt/fast3r-studio/fast3r-studio /opt/fast3r-studio/fast3r; do
    [ -x "$f" ] || fail "$f missing or not executable"
done
[ -f /usr/share/applications/fast3r-studio.desktop ] || fail "no .desktop entry"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate /usr/share/applications/fast3r-studio.desktop || fail ".desktop entry invalid"
fi
grep -q '^MimeType=inode/directory;application/x-fast3r-project;$' /usr/share/applications/fast3r-studio.desktop \
    || fail "MimeType line of the .desktop entry"
[ -f /usr/share/icons/hicolor/256x256/apps/fast3r-studio.png ] || fail "no hicolor icon"
if command -v update-mime-database >/dev/null; then
    # postinst ran update-mime-database: *.f3r is in the compiled globs
    grep -q 'application/x-fast3r-project:\*\.f3r' /usr/share/mime/globs2 || fail "*.f3r not in the MIME database"
fi
# every shared library of the installed bundle resolves on this system (ldd: no "not found"), with
# the library path the bundle's launcher sets (LD_LIBRARY_PATH=_internal). The Wayland client
# libraries are exempt (libwayland-* are Recommends; X11 is what runs here).
missing="$(LD_LIBRARY_PATH=/opt/fast3r-studio/_internal find /opt/fast3r-studio -name '*.so*' -type f \
    ! -ipath '*wayland*' ! -iname '*wlshell*' -exec ldd {} + 2>/dev/null | grep 'not found' | sort -u || true)"
[ -z "$missing" ] || fail "unresolved libraries: $missing"
echo "installed_kb=$(du -sk /opt/fast3r-studio | cut -f1)"

# ---- 4. the installed app on a bundled sample, until the reconstruction is shown -------------------
shot="$WORK/installed_app.png"
t=$(now)
rc=0
run_x /usr/bin/fast3r-studio "$SAMPLE" --model demo --size 224 --screenshot "$shot" \
    --screenshot-timeout 300 > "$WORK/app.out" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$WORK/app.out"; fail "the app exited with $rc"; }
echo "app_run_s=$(since "$t")"
[ -s "$shot" ] || fail "no screenshot"
# a rendered scene: many colours, and the middle of the window (the viewport) is not one flat colour
"$PYTHON" - "$shot" <<'EOF' || fail "the screenshot does not show a reconstruction"
import sys

import numpy as np
from PIL import Image

img = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
h, w, _ = img.shape
colours = len(np.unique(img.reshape(-1, 3), axis=0))
mid = img[h // 4 : 3 * h // 4, w // 3 : 2 * w // 3].reshape(-1, 3).astype(np.int32)
background = np.median(mid, axis=0)
differs = float(np.mean(np.abs(mid - background).sum(axis=1) > 40))
print(f"screenshot={sys.argv[1]}\nscreenshot_size={w}x{h}\ncolours={colours}")
print(f"viewport_non_background={differs:.3f}")
sys.exit(0 if colours > 2000 and differs > 0.05 else 1)
EOF
if grep -q Traceback "$FAST3R_LOG_DIR/fast3r.log"; then
    cat "$FAST3R_LOG_DIR/fast3r.log"
    fail "the app logged a traceback"
fi

# ---- 5. time to the first visible window ----------------------------------------------------------
# no arguments: the first start a user sees (the sample scene with the demo model starts at once).
# Cold: the bundle's files dropped from the page cache before each run (first launch after install or
# boot); warm: launched again right after. The target (< 5 s) applies to the cold figure.
rm -rf "$FAST3R_CONFIG_DIR"
for kind in cold warm; do
    evict=()
    [ "$kind" = cold ] && evict=(--evict /opt/fast3r-studio)
    "${XVFB[@]}" python3 packaging/startup_time.py --runs 5 "${evict[@]}" -- /usr/bin/fast3r-studio 2>&1 \
        | tee "$WORK/startup_$kind.txt"
    median="$(sed -n 's/^median startup_s=\([0-9.]*\).*/\1/p' "$WORK/startup_$kind.txt")"
    [ -n "$median" ] || fail "no startup figure"
    echo "startup_${kind}_median_s=$median"
done
median="$(sed -n 's/^median startup_s=\([0-9.]*\).*/\1/p' "$WORK/startup_cold.txt")"
awk -v m="$median" 'BEGIN { exit !(m < 5.0) }' || fail "cold startup $median s is not under 5 s"

# ---- 6. the installed CLI --------------------------------------------------------------------------
/usr/bin/fast3r --version
t=$(now)
/usr/bin/fast3r reconstruct "$SAMPLE" -o "$WORK/cli_out" --model demo --size 224 > "$WORK/cli.out" 2>&1 \
    || { cat "$WORK/cli.out"; fail "fast3r reconstruct failed"; }
echo "cli_reconstruct_s=$(since "$t")"
for f in points.ply scene.glb cameras.json transforms.json colmap project.f3r; do
    [ -e "$WORK/cli_out/$f" ] || fail "fast3r reconstruct wrote no $f"
done
/usr/bin/fast3r info "$WORK/cli_out/project.f3r" | tee "$WORK/info.txt"
grep -q '^Views *8 ' "$WORK/info.txt" || fail "fast3r info does not report 8 views"
/usr/bin/fast3r models | tee "$WORK/models.txt"
grep -q '^demo .*bundled .*/opt/fast3r-studio/_internal/resources/models/demo' "$WORK/models.txt" \
    || fail "the demo model is not found in the installed bundle"

# ---- 7. uninstall, nothing left behind -------------------------------------------------------------
if [ "$KEEP" = 1 ]; then
    echo "kept installed (--keep-installed)"
    exit 0
fi
$SUDO dpkg -r fast3r-studio
[ ! -e /opt/fast3r-studio ] || fail "/opt/fast3r-studio is still there after dpkg -r: $(find /opt/fast3r-studio | head)"
$SUDO dpkg -P fast3r-studio
snapshot > "$WORK/files_after.txt"
# Caches the postinst/postrm regenerate (not files of the package) may appear on a machine that had
# none before: they are reported, not counted.
caches='^(/usr/share/applications/mimeinfo\.cache|/usr/share/icons/hicolor/icon-theme\.cache)$'
diff "$WORK/files_before.txt" "$WORK/files_after.txt" > "$WORK/files_diff.txt" || true
grep -E "^[<>] " "$WORK/files_diff.txt" | grep -Ev "^[<>] ${caches#^}" > "$WORK/files_left.txt" || true
grep -E "^[<>] " "$WORK/files_diff.txt" | grep -E "^[<>] ${caches#^}" || true
[ ! -s "$WORK/files_left.txt" ] || { cat "$WORK/files_left.txt"; fail "files under /opt or /usr changed"; }
echo "uninstall_clean=1 ($(wc -l < "$WORK/files_before.txt") paths under /opt and /usr compared)"
echo "ALL CHECKS PASSED"
