"""Airflow on this machine, for ``zooflow up``, ``zooflow demo`` and the tests that need real services.

One toolkit instead of a copy per caller: :mod:`.processes` starts, stops and finds process groups,
:mod:`.airflow` knows Airflow's services and their health, :mod:`.api` is the REST client, and
:mod:`.instance` is the folder and process record of a ``zooflow up`` instance.
"""
