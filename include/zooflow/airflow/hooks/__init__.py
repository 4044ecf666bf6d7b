"""zooflow hooks for Airflow 3."""
