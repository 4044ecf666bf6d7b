"""The query strategies' names and the default one.

Apart from :mod:`zooflow.al.learner`, which loads numpy, so that the command line and the AL settings
(read when a DAG file is parsed) can offer them without loading it.
"""

STRATEGIES = ("uncertainty", "margin", "entropy")
# Margin sampling, not the founding loop's least-confidence ("uncertainty"): on the demo digits it
# beats random sampling at every label budget over 10 seeds, where least-confidence trails at the
# first round (benchmarks/bench_al.py). "uncertainty" stays one setting away.
DEFAULT_STRATEGY = "margin"
RANDOM = "random"  # the baseline: no model in the choice
