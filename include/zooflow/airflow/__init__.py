"""Airflow 3 hooks, operators, sensors and triggers over the zooflow library, in the layout of
Airflow's own providers. Only this package imports Airflow."""
