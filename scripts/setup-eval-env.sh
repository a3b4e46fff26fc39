#!/usr/bin/env bash
# Python environment for tools/eval_mot.py (tracking metrics): a venv under the build directory, so it
# works where Debian's python3 refuses system-wide pip installs (PEP 668). The tests that score tracks
# find it there and skip, saying so, without it. Pinned: motmetrics 1.4.0 still calls np.asfarray,
# which NumPy 2 removed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${BUILD_DIR:-build}/eval-venv"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import motmetrics, onnxruntime" 2>/dev/null; then
  echo "setup-eval-env: $VENV ready"
  exit 0
fi
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  "motmetrics==1.4.0" "numpy<2" "pandas<2.3" "scipy<1.14" "onnxruntime"
"$VENV/bin/python" -c "import motmetrics"
echo "setup-eval-env: installed motmetrics into $VENV"
