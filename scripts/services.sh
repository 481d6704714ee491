#!/usr/bin/env bash
# Make sure the system packages and local services the test suite uses are present and running:
# PostgreSQL 15 (+ PostGIS), Mosquitto, NATS, Redis, openssl, and Debian's Chromium for browser tests.
# Needs root for apt-get; on a machine where everything is there already it only checks.
set -uo pipefail
need_apt=()
pg_major=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)
if [ -n "$pg_major" ] && [ ! -f "/usr/share/postgresql/$pg_major/extension/postgis.control" ]; then
  need_apt+=("postgresql-$pg_major-postgis-3")
fi
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
# notification tests: a real MQTT broker, and openssl to make a throw-away CA for HTTPS
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> apt-get install ${need_apt[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null 2>&1 \
      || echo "warning: apt-get install ${need_apt[*]} failed"
  else
    echo "warning: not root; cannot install ${need_apt[*]}"
  fi
fi
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "$pg_major" ] && ! up 5432; then
  echo "==> starting PostgreSQL $pg_major"
  pg_ctlcluster --skip-systemctl-redirect "$pg_major" main start || true
fi
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if ! up 1883 && [ -x "$mosquitto_bin" ]; then
  echo "==> starting Mosquitto"; "$mosquitto_bin" -d -c /etc/mosquitto/mosquitto.conf || true
fi
if ! up 4222 && [ -x /usr/sbin/nats-server ]; then
  echo "==> starting NATS"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
fi
for _ in $(seq 1 30); do up 5432 && break; sleep 1; done
up 5432 || { echo "error: PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }
for _ in $(seq 1 10); do up 1883 && break; sleep 1; done
up 1883 || { echo "error: Mosquitto is not reachable on 127.0.0.1:1883"; exit 1; }
exit 0
