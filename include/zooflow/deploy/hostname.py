"""The host name an Airflow process reports, settable per process.

Airflow records on each task instance the host that ran it, from ``[core] hostname_callable``.
Two Celery workers on one machine (the native distributed run) would both report the machine's
name, and nobody could tell which worker ran a task; each worker process is therefore started
with its own ``ZOOFLOW_HOSTNAME``. In docker-compose every container has its own host name
anyway, and without the variable this is Airflow's default, the fully qualified domain name.
"""

from __future__ import annotations

import os
import socket

HOSTNAME_ENV = "ZOOFLOW_HOSTNAME"
CALLABLE = f"{__name__}.process_hostname"


def process_hostname() -> str:
    """``$ZOOFLOW_HOSTNAME`` when set, else the machine's FQDN (as ``airflow.utils.net.getfqdn``)."""
    return os.environ.get(HOSTNAME_ENV, "").strip() or socket.getfqdn()
