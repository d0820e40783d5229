#!/usr/bin/env bash
# Sets everything up, then runs what you ask for:
#   ./run.sh demo        the scripted demo day
#   ./run.sh test [...]  the static checks, then every test (pytest arguments may follow)
#   ./run.sh lint        only the static checks: ruff, mypy, import-linter
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
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[${1:-test}]"
}

setup_gateway() {
  command -v npm >/dev/null 2>&1 || { echo "Node.js 20 and npm are required for the end-to-end tests." >&2; return 1; }
  npm ci --prefix tests/gateway --no-audit --no-fund --loglevel=error
}

# Debian's chromium and chromium-driver, for the web console's tests in a real browser (selenium).
setup_browser() {
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "Installing chromium, chromium-driver and a Chinese font (Debian packages) for the web console's tests..." >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-wqy-zenhei >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-wqy-zenhei >/dev/null; }
    else
      echo "The web console's tests need a browser and a Chinese font: sudo apt-get install chromium chromium-driver fonts-wqy-zenhei." >&2
      return 1
    fi
  fi
}

# A throwaway PostgreSQL server (Debian's package) on 127.0.0.1 for the test suite's second run.
pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

setup_postgres() {
  if [ -z "$(pg_bin)" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "Installing PostgreSQL (Debian package) for the tests..." >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null; }
    else
      echo "PostgreSQL is needed for the tests: sudo apt-get install postgresql (or set RELAYBOT_TEST_POSTGRES=skip)." >&2
      return 1
    fi
  fi
}

start_postgres() {
  local bin dir port as=()
  bin="$(pg_bin)"
  dir="$(mktemp -d /tmp/relaybot-pg.XXXXXX)"
  port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root
    chown postgres: "$dir"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  PG_DIR="$dir"
  PG_STOP=("${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop)
  export RELAYBOT_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

stop_postgres() {
  if [ -n "${PG_DIR:-}" ]; then
    "${PG_STOP[@]}" >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}

# Static checks, configured in pyproject.toml: ruff (lint and format), mypy, import-linter (the layers).
run_lint() {
  echo "== ruff ==" >&2
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  echo "== mypy ==" >&2
  .venv/bin/mypy
  if [ -f .importlinter ] || grep -q '^\[tool\.importlinter\]' pyproject.toml; then
    echo "== import-linter ==" >&2
    .venv/bin/lint-imports
  fi
}

case "${1:-}" in
  demo)
    setup_python
    .venv/bin/relaybot demo
    ;;
  test)
    shift
    setup_python test,ocr  # the OCR extra is optional for the bot, but its tests run
    run_lint
    setup_gateway
    setup_browser
    echo "== tests on SQLite ==" >&2
    .venv/bin/python -m pytest "$@"
    if [ "${RELAYBOT_TEST_POSTGRES:-}" != skip ]; then
      setup_postgres
      trap stop_postgres EXIT
      start_postgres
      echo "== the same tests on PostgreSQL ==" >&2
      .venv/bin/python -m pytest "$@"
    fi
    ;;
  lint)
    setup_python test,ocr  # mypy reads the OCR extra's imports too
    run_lint
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
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
