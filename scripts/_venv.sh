# Sourced by the other scripts: make sure .venv exists with the pinned requirements installed.
# requirements-dev.txt includes requirements-sandbox.txt (the moto server), which includes requirements.txt
# (the runtime, all the production image gets). Reinstalls only when one of them changes (a hash stamp in .venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

pick_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Carrel needs Python 3.11 or newer." >&2; return 1
}

# uv installs the pinned set in seconds where pip takes minutes: the uv on PATH, else one put into .venv with pip
# (a single wheel). Plain pip when neither works (no uv wheel for this platform, say).
install_requirements() {
  local uv=""
  if command -v uv >/dev/null 2>&1; then
    uv="$(command -v uv)"
  elif [ -x .venv/bin/uv ] || .venv/bin/python -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1; then
    uv=.venv/bin/uv
  fi
  if [ -n "$uv" ] && "$uv" pip install --quiet --python .venv/bin/python -r requirements-dev.txt; then
    return 0
  fi
  [ -n "$uv" ] && echo "uv could not install the requirements; falling back to pip" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
}

if [ ! -x .venv/bin/python ]; then
  echo "==> Creating .venv"
  "$(pick_python)" -m venv .venv
fi
stamp=.venv/.requirements.sha256
REQUIREMENT_FILES=(requirements.txt requirements-sandbox.txt requirements-dev.txt)
wanted=$(cat "${REQUIREMENT_FILES[@]}" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "==> Installing requirements"
  install_requirements
  echo "$wanted" > "$stamp"
fi
