"""zooflow's Celery deployment, described once for docker-compose and for the native distributed run."""
