"""zooflow: the Zooniverse labelling loop as a library, with Airflow 3 operators in ``zooflow.airflow``.

The library itself never imports Airflow, so the CLI, the sandbox and the tests use the same code
that Airflow tasks run.
"""

__version__ = "0.1.0"
