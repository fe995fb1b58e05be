"""gunicorn settings for the web app:  gunicorn --config deploy/gunicorn.conf.py 'service:create_app()'

Read from the same environment as the app (service/config.py): WEB_BIND, WEB_WORKERS,
WEB_THREADS, LOG_LEVEL.
"""

import os
import shutil
import tempfile

# Several processes serve /metrics: prometheus_client adds up their counters from files in this
# directory. It picks that mode when first imported, so the variable is set before the app (and
# prometheus_client with it) is loaded; a fresh directory per start leaves no stale files.
metrics_dir = tempfile.mkdtemp(prefix="aftercare-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

from service.ops import logs  # noqa: E402  (after the variable above)
from service.config import Config  # noqa: E402

settings = Config()
bind = settings.WEB_BIND
workers = settings.WEB_WORKERS
threads = settings.WEB_THREADS  # requests in flight per process (webhooks wait on the database)
worker_class = "gthread"
timeout = 30
graceful_timeout = 30
keepalive = 5
control_socket_disable = True  # unused, and the service user has no home to put it in
# JSON lines on stderr (journald, docker logs); the app logs each request with its id.
accesslog = None
logconfig_dict = logs.dict_config(settings.LOG_LEVEL)


def child_exit(server, worker):
    """A gone process's live gauges must not count; its counters still do."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    shutil.rmtree(metrics_dir, ignore_errors=True)
