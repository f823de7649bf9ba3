#!/usr/bin/env bash
# Run the whole site locally: migrate, set up the demo, then the web server and one RQ worker per
# core until Ctrl-C, which stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${PORT:-8000}"
WORKERS="${WORKERS:-$(nproc 2>/dev/null || echo 2)}"

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
