"""zooflow operators for Airflow 3."""
