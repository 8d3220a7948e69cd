#!/usr/bin/env bash
# Installs everything the test suite needs, then runs it twice: on the embedded
# default (SQLite + in-memory channel layer) and on PostgreSQL + Redis.
# Usage: bash tests/run.sh [extra pytest args]
set -uo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Python environment ------------------------------------------------------
PY=python
command -v pyenv >/dev/null 2>&1 && PY="$(pyenv which python 2>/dev/null || echo python)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null || PY=python3.12
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv || exit 1
fi
log "installing Python packages"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v 'is ignored: it is neither' || true
.venv/bin/python -c 'import django, channels, playwright' || { echo "pip install failed"; exit 1; }

# --- Chromium for the browser tests ----------------------------------------
if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian chromium"
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi

# --- npm SDK for the compatibility test -------------------------------------
if [ -f tests/sdk/package.json ]; then
  log "installing @trigger.dev/sdk (npm ci)"
  (cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error) || exit 1
fi

# --- PostgreSQL and Redis ---------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  log "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='runwatch'" | grep -q 1 \
  || createdb -h 127.0.0.1 -U postgres runwatch

# --- the suite, twice ------------------------------------------------------
status=0
log "tests on SQLite + in-memory channel layer"
env -u DATABASE_URL -u REDIS_URL .venv/bin/python -m pytest -q "$@" || status=1

log "tests on PostgreSQL + Redis"
DATABASE_URL=postgresql://postgres@127.0.0.1:5432/runwatch REDIS_URL=redis://127.0.0.1:6379/0 \
  SECRET_KEY=runwatch-test-secret RUNWATCH_TEST_DB_NAME=test_runwatch \
  .venv/bin/python -m pytest -q "$@" || status=1

log "ruff"
.venv/bin/ruff check . || status=1

if [ "$status" = 0 ]; then log "all test runs passed"; else log "some test runs FAILED"; fi
exit "$status"
