# Sourced by the README's scripts: makes .venv from uv.lock (hash-checked) and puts it first on PATH.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "repropack needs Python >= 3.11 (found $("$PY" --version 2>&1))" >&2; exit 1; }
UV="$("$PY" "$REPO/scripts/bootstrap.py")"
export UV_NATIVE_TLS=1 UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT="$REPO/.venv"
"$UV" sync --frozen --quiet --python "$PY" --project "$REPO" ${REPROPACK_UV_GROUPS:-}
export PATH="$REPO/.venv/bin:$PATH" REPROPACK_UV="$UV"
