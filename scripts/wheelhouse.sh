#!/usr/bin/env bash
# Build the wheelhouse the Containerfile installs from (network here; none in the image build):
# every runtime dependency from uv.lock (hash-checked, wheels only) plus repropack's own wheel.
# Usage: scripts/wheelhouse.sh [OUTDIR]   (default dist/wheelhouse), then:
#   docker build --network none -f Containerfile -t repropack OUTDIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
OUT="$(mkdir -p "${1:-$REPO/dist/wheelhouse}" && cd "${1:-$REPO/dist/wheelhouse}" && pwd)"
rm -f "$OUT"/*.whl "$OUT"/requirements.txt "$OUT"/pylock.toml
cd "$REPO"
"$REPROPACK_UV" export --quiet --frozen --no-default-groups --no-emit-project --format pylock.toml -o "$OUT/pylock.toml"
python "$REPO/scripts/wheelhouse.py" "$OUT/pylock.toml" "$OUT"
"$REPROPACK_UV" build --quiet --wheel --out-dir "$OUT" "$REPO"
wheel=$(ls "$OUT"/repropack-*.whl)
version=$(basename "$wheel" | cut -d- -f2)
echo "repropack==$version --hash=sha256:$(sha256sum "$wheel" | cut -d' ' -f1)" >>"$OUT/requirements.txt"
echo "wheelhouse: $OUT ($(du -sh "$OUT" | cut -f1))" >&2
