#!/usr/bin/env bash
# Compile packaging/windows/fast3r_studio.nsi with makensis (on Linux or Windows) against a placeholder
# bundle: checks that the script compiles and that the installer holds the expected files. The real
# Windows bundle is built by the Windows job of .github/workflows/release.yml.
#
# Usage: packaging/windows/check_nsis.sh     (needs makensis: apt-get install nsis)
# Writes build/nsis-placeholder/ and dist/fast3r-studio-<version>-windows-x64-setup-PLACEHOLDER.exe
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
VERSION="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
BUNDLE="build/nsis-placeholder/fast3r-studio"
OUT="dist/fast3r-studio-${VERSION}-windows-x64-setup-PLACEHOLDER.exe"

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/_internal/resources/models/demo" dist
printf 'MZ placeholder for the GUI executable\n' > "$BUNDLE/fast3r-studio.exe"
printf 'MZ placeholder for the CLI executable\n' > "$BUNDLE/fast3r.exe"
printf 'placeholder\n' > "$BUNDLE/_internal/python311.dll"
printf '{}\n' > "$BUNDLE/_internal/resources/models/demo/config.json"

rm -f "$OUT"
start=$(date +%s.%N)
makensis -V2 -WX -DBUNDLE_DIR="$REPO/$BUNDLE" -DVERSION="$VERSION" -DOUTFILE="$REPO/$OUT" \
    "$REPO/packaging/windows/fast3r_studio.nsi"
awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "makensis: %.1f s\n", b - a }'
[ -s "$OUT" ] || { echo "no installer written" >&2; exit 1; }
echo "installer: $OUT ($(stat -c %s "$OUT") bytes)"
# an NSIS installer is a PE executable: check the header, and list its payload when 7z is available
head -c 2 "$OUT" | grep -q MZ || { echo "$OUT is not a PE executable" >&2; exit 1; }
if command -v 7z >/dev/null 2>&1; then
    listing="$(7z l "$OUT")"
    for f in fast3r-studio.exe fast3r.exe _internal/python311.dll uninstall.exe; do
        grep -q "${f//\//.}" <<< "$listing" || { echo "missing in the installer: $f" >&2; exit 1; }
    done
    echo "payload: fast3r-studio.exe fast3r.exe _internal/ uninstall.exe present"
fi
echo "NSIS script OK"
