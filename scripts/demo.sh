#!/usr/bin/env bash
# Run the whole site locally: migrate, set up the demo, then the web server and one RQ worker per
# core until Ctrl-C, which stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${PORT:-8000}"
WORKERS="${WORKERS:-$(nproc 2>/dev/null || echo 2)}"

# The demo runs as a visitor sees the site: DEBUG off (real 404 and 500 pages, no settings on
# show), static files served by WhiteNoise from collectstatic's folder. It is plain HTTP on
# localhost, so the cookies and redirects meant for HTTPS are off; each can be overridden.
mkdir -p var
if [ ! -s var/demo-secret-key ]; then
  $PY -c "import secrets; print(secrets.token_urlsafe(50))" > var/demo-secret-key
fi
export DEBUG="${DEBUG:-false}"
export SECRET_KEY="${SECRET_KEY:-$(cat var/demo-secret-key)}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-localhost,127.0.0.1,[::1]}"
export SECURE_SSL_REDIRECT="${SECURE_SSL_REDIRECT:-false}"
export SESSION_COOKIE_SECURE="${SESSION_COOKIE_SECURE:-false}"
export CSRF_COOKIE_SECURE="${CSRF_COOKIE_SECURE:-false}"
export SECURE_HSTS_SECONDS="${SECURE_HSTS_SECONDS:-0}"

$PY manage.py collectstatic --noinput -v 0
$PY manage.py migrate --noinput
$PY manage.py demo_setup

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "Stopping the web server and the workers..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait || true
  echo "Stopped."
}
trap stop_all INT TERM EXIT

for i in $(seq 1 "$WORKERS"); do
  $PY manage.py rqworker default video --name "demo-$i-$$" &
  pids+=($!)
done
$PY manage.py runserver "127.0.0.1:$PORT" --noreload &
pids+=($!)
echo "twicesite is running at http://127.0.0.1:$PORT/ with $WORKERS workers. Ctrl-C stops everything."
wait
