"""How the batch-retired gate may look: the modes :mod:`zooflow.retirement` explains.

Apart from that module, which loads panoptes_client, so that the command line and the AL settings
(read when a DAG file is parsed) can offer them without loading it.
"""

MODES = ("counts", "precise")
