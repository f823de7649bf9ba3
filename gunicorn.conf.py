"""gunicorn's settings for twicesite, read from the working directory: run `gunicorn
twicesite.wsgi` in the checkout (scripts/demo.sh and docs/deploy.md do)."""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_WORKERS") or 2)
# Threads, so a download streamed by the site itself (no nginx in front, or media on S3) or a
# slow upload holds one thread, not a whole process, and never stops the worker's heartbeat.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS") or 4)
# A 2 GB upload is probed and copied into storage before its answer: minutes on a slow disk.
timeout = 300
# On SIGTERM, requests under way get this long to finish before the processes are ended.
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_SECONDS") or 10)
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None
# gunicorn's usual line, and how long the request held its thread (%(L)s seconds).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)ss'
# X-Forwarded-For from the proxy in front on this machine (docs/deploy.md).
forwarded_allow_ips = os.environ.get("WEB_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# gunicorn's control socket is one path per user (~/.gunicorn/gunicorn.ctl): every demo, test
# and checkout of this user would fight over it, and nothing here uses it.
control_socket_disable = True
