#!/usr/bin/env bash
# Services the tests talk to. `check` makes sure each is up (starting it if it is down);
# `stop` stops what `check` started. PostgreSQL runs on 127.0.0.1:5432 with trust auth on these machines.
set -euo pipefail
STATE=${RTV_SERVICES_STATE:-/tmp/rtv-ci-services}
mkdir -p "$STATE"

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }

case "${1:-check}" in
  check)
    # Debian's Chromium for the dashboard's browser tests (Playwright drives it; nothing is downloaded)
    if [ ! -x /usr/bin/chromium ]; then
      echo "Chromium is missing; installing it"
      apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    fi
    if ! pg_up; then
      echo "PostgreSQL is down; starting it"
      cluster=$(ls /etc/postgresql 2>/dev/null | head -n1)
      if [ -n "$cluster" ]; then
        pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || service postgresql start
      else
        service postgresql start
      fi
      touch "$STATE/postgres-started"
      for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    fi
    pg_up || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
    ;;
  stop)
    if [ -f "$STATE/postgres-started" ]; then
      cluster=$(ls /etc/postgresql 2>/dev/null | head -n1)
      pg_ctlcluster --skip-systemctl-redirect "$cluster" main stop || service postgresql stop || true
      rm -f "$STATE/postgres-started"
    fi
    ;;
esac
