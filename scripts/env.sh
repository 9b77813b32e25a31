# shellcheck shell=bash
# Sourced by ./runner and ./scripts/test: provisions libtorch and the build
# environment. Idempotent; prints nothing when everything is in place.
#
# libtorch comes from PyPI: torch==2.11.0 is the exact pair of tch 0.24.0.
# It lives in a venv in a per-user cache keyed by the torch version, so that
# clones share it: ${VISAGE_VENV:-${XDG_CACHE_HOME:-~/.cache}/visage/torch-2.11.0}.

VISAGE_TORCH_VERSION=2.11.0
VISAGE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VISAGE_VENV=${VISAGE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/visage/torch-$VISAGE_TORCH_VERSION}

visage_log() { printf '\033[1mvisage:\033[0m %s\n' "$*" >&2; }

visage_ensure_torch() {
  if [ -f "$VISAGE_VENV/.complete" ]; then return 0; fi
  command -v python3 >/dev/null || { visage_log "python3 is needed to install libtorch (apt-get install python3 python3-venv)"; return 1; }
  visage_log "installing torch==$VISAGE_TORCH_VERSION (libtorch) into $VISAGE_VENV (about a minute, 4.6 GB)"
  mkdir -p "$(dirname "$VISAGE_VENV")"
  python3 -m venv "$VISAGE_VENV" || { visage_log "python3 -m venv failed (apt-get install python3-venv)"; return 1; }
  "$VISAGE_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$VISAGE_TORCH_VERSION" || return 1
  touch "$VISAGE_VENV/.complete"
}

# The test suite compares the built-in backbones with torchvision's and
# timm's (core/visage-core/tests/pytorch_interop.rs), reads the runner's
# TensorBoard files with TensorBoard's own reader and the files of
# `runner export` with scipy (tests/export.rs), and checks the task metrics
# against scikit-learn (core/visage-tasks/tests); the runner needs none of them.
VISAGE_REFERENCE="torchvision==0.26.0 timm==1.0.31 tensorboard==2.20.0 scipy==1.17.1 scikit-learn==1.7.2"
visage_ensure_reference() {
  local marker="$VISAGE_VENV/.reference-${VISAGE_REFERENCE// /-}"
  if [ -f "$marker" ]; then return 0; fi
  visage_log "installing the PyTorch reference packages for the tests: $VISAGE_REFERENCE"
  # shellcheck disable=SC2086
  "$VISAGE_VENV/bin/python" -m pip install --quiet --disable-pip-version-check $VISAGE_REFERENCE || return 1
  touch "$marker"
}

visage_ensure_rust() {
  command -v cargo >/dev/null && return 0
  [ -x "$HOME/.cargo/bin/cargo" ] && { export PATH="$HOME/.cargo/bin:$PATH"; return 0; }
  visage_log "cargo is missing: install the Rust toolchain (rustup) first"
  return 1
}

visage_env() {
  visage_ensure_rust || return 1
  visage_ensure_torch || return 1
  export VIRTUAL_ENV="$VISAGE_VENV"
  export PATH="$VISAGE_VENV/bin:$PATH"
  export LIBTORCH_USE_PYTORCH=1
  local lib
  lib=$(ls -d "$VISAGE_VENV"/lib/python3*/site-packages/torch/lib 2>/dev/null | head -n 1)
  [ -n "$lib" ] || { visage_log "no torch/lib in $VISAGE_VENV; remove it and retry"; return 1; }
  # Binaries carry an rpath to this link (see .cargo/config.toml).
  mkdir -p "$VISAGE_ROOT/.visage"
  ln -sfn "$lib" "$VISAGE_ROOT/.visage/libtorch"
  # Doctests are linked outside target/, so they get the absolute path.
  export RUSTDOCFLAGS="-C link-arg=-Wl,-rpath,$lib"
  # libtorch's OpenMP threads spin while they wait for work. On a machine
  # whose cores are busy with anything else (a build, a second run, the
  # test suite) the spinning threads starve each other: a PCL step at
  # batch 32 took 10-12 s instead of 2.6 s with passive waiting, measured
  # on the 2-core machine at load 5. Set OMP_WAIT_POLICY to override.
  export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
}
