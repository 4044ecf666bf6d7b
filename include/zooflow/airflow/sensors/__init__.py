"""zooflow sensors for Airflow 3."""
