"""DAG builders: the exports and active-learning DAGs, made for a project entry or for ad hoc runs."""
