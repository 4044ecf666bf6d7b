"""zooflow triggers for Airflow 3."""
