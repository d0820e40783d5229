#!/usr/bin/env bash
# Sets everything up, then runs what you ask for:
#   ./run.sh demo        the scripted demo day
#   ./run.sh test [...]  every test (pytest arguments may follow)
#   ./run.sh bench       the benchmarks (prints their numbers)
#   ./run.sh setup       only install (Python venv in .venv, Node gateway for the end-to-end tests)
set -euo pipefail
cd "$(dirname "$0")"

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)'; then
      echo "$candidate"; return 0
    fi
  done
  echo "Python 3.11 or 3.12 is required (python-wechaty does not run on 3.13)." >&2
  return 1
}

setup_python() {
  if [ ! -x .venv/bin/python ]; then
    "$(pick_python)" -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${1:-test}]"
}

setup_gateway() {
  command -v npm >/dev/null 2>&1 || { echo "Node.js 20 and npm are required for the end-to-end tests." >&2; return 1; }
  npm ci --prefix tests/gateway --no-audit --no-fund --loglevel=error
}

case "${1:-}" in
  demo)
    setup_python
    .venv/bin/relaybot demo
    ;;
  test)
    shift
    setup_python test,ocr  # the OCR extra is optional for the bot, but its tests run
    setup_gateway
    .venv/bin/python -m pytest "$@"
    ;;
  bench)
    shift
    setup_python test
    setup_gateway
    .venv/bin/python -m benchmarks "$@"
    ;;
  setup)
    setup_python test,ocr
    setup_gateway
    ;;
  *)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
