"""Reports for people: one self-contained HTML page per export run and per active-learning round.

The JSON reports the steps already write are for machines; these pages are what a team opens to see
whether the loop is healthy. Each page embeds its charts (PNG data URIs), so one file is the whole
report, and each has a JSON sibling with its key figures for a UI to list. Plain Python: the Airflow
operators and the command line call the same writers.
"""
