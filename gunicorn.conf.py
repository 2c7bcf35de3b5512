"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`."""

import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
# gevent: an open event stream costs a greenlet, not a thread, so streams never starve requests.
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = 1000  # open streams plus requests, per worker
# Streams never end by themselves; browsers resume without loss, so don't wait long on deploys.
graceful_timeout = 5
# No preload: locks created before gevent patches the worker would be real, blocking ones.
preload_app = False
accesslog = "-"
