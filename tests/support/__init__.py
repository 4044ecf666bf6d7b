"""Scaffolding the tests share and the installed package must not ship: apt-get, private Postgres and Redis,
the native Celery test cluster, the sandboxes and DAG loading the DAG tests share.

Tests import it as ``support`` (``from support.cluster import CeleryCluster``): pytest puts ``tests/`` on
``sys.path`` because ``tests/conftest.py`` lives there in a folder without ``__init__.py`` (its default
``prepend`` import mode), the same way ``contract_support`` and the other ``*_support`` helpers are found.
"""
