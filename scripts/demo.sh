#!/usr/bin/env bash
# Run the whole site locally: migrate, set up the demo, then gunicorn and one RQ worker per core
# until Ctrl-C, which stops all of them and the bundled Redis, and prints "Stopped.".
#
# Every program here runs in a process group of its own (setsid), so a Ctrl-C reaches this script
# alone, whenever it is pressed: the script then ends each group (the program and whatever it
# forked: gunicorn's workers, a worker's job), with SIGKILL for any still there after a few
# seconds. No program sees the Ctrl-C itself, so none prints a traceback for it, and a worker
# still loading its models or busy with a job cannot keep the demo waiting.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${PORT:-8000}"
WORKERS="${WORKERS:-$(nproc 2>/dev/null || echo 2)}"
GRACE_SECONDS=4

groups=()
stop_all() {
  trap '' INT TERM  # a second Ctrl-C while stopping changes nothing
  echo
  echo "Stopping..."
  # TERM asks each program to stop; a second TERM (RQ ignores one within a second of the
  # first) has a worker busy with a job kill it (its "cold shutdown") instead of waiting for
  # it: the job is queued again when a worker next starts.
  for pid in "${groups[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  for tick in $(seq $((GRACE_SECONDS * 10))); do
    alive=()
    for pid in "${groups[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive+=("$pid"); done
    [ "${#alive[@]}" = 0 ] && break
    [ "$tick" = 12 ] && for pid in "${alive[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
    sleep 0.1
  done
  for pid in "${groups[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done
  wait 2>/dev/null
  if [ -z "${REDIS_URL:-}" ]; then
    # Stopped, unless another process of this checkout (a test run) still uses it.
    $PY manage.py embedded_redis release >/dev/null 2>&1
  fi
  echo "Stopped."
  exit "${1:-0}"
}
trap stop_all INT TERM

# One program in a group of its own, in the background (its pid is its group's id).
start() {
  setsid "$@" &
  groups+=($!)
}
# One setup step, waited for; a Ctrl-C meanwhile stops it like the rest.
step() {
  start "$@"
  wait "$!" || { echo "twicesite: the demo could not start: '$*' failed." >&2; stop_all 1; }
}

# The demo runs as a visitor sees the site: DEBUG off (real 404 and 500 pages, no settings on
# show), static files served by WhiteNoise from collectstatic's folder. It is plain HTTP on
# localhost, so the cookies and redirects meant for HTTPS are off; each can be overridden.
VAR="${VAR_DIR:-var}"
mkdir -p "$VAR"
if [ ! -s "$VAR/demo-secret-key" ]; then
  $PY -c "import secrets; print(secrets.token_urlsafe(50))" > "$VAR/demo-secret-key"
fi
export DEBUG="${DEBUG:-false}"
export SECRET_KEY="${SECRET_KEY:-$(cat "$VAR/demo-secret-key")}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-localhost,127.0.0.1,[::1]}"
export SECURE_SSL_REDIRECT="${SECURE_SSL_REDIRECT:-false}"
export SESSION_COOKIE_SECURE="${SESSION_COOKIE_SECURE:-false}"
export CSRF_COOKIE_SECURE="${CSRF_COOKIE_SECURE:-false}"
export SECURE_HSTS_SECONDS="${SECURE_HSTS_SECONDS:-0}"
# Password-reset mail is printed by the web server rather than sent.
export EMAIL_URL="${EMAIL_URL:-console:}"
# gunicorn (gunicorn.conf.py), as in production; two processes of four threads serve a demo.
export WEB_BIND="127.0.0.1:$PORT"
export WEB_WORKERS="${WEB_WORKERS:-2}"
export WEB_GRACEFUL_SECONDS="${WEB_GRACEFUL_SECONDS:-2}"

# The bundled Redis runs for the whole demo (not only while some process uses it), and is
# stopped by stop_all.
if [ -z "${REDIS_URL:-}" ]; then
  # Quiet by -v 0, not by a redirect: a redirect on `step` would also swallow what stop_all
  # prints if Ctrl-C comes while it waits.
  step $PY manage.py embedded_redis start -v 0
fi
step $PY manage.py collectstatic --noinput -v 0
step $PY manage.py migrate --noinput
step $PY manage.py demo_setup

for i in $(seq 1 "$WORKERS"); do
  start $PY manage.py rqworker default video --name "demo-$i-$$"
done
start $PY -m gunicorn twicesite.wsgi
echo "twicesite is running at http://127.0.0.1:$PORT/ with $WORKERS workers. Ctrl-C stops everything."
# Until Ctrl-C, or until a program ends by itself (then the rest are stopped too).
wait -n
echo "twicesite: a program of the demo ended by itself; stopping the rest." >&2
stop_all 1
