"""The choices the subjects commands offer: which duplicate ``dedupe`` keeps, how a CSV row updates metadata.

Apart from :mod:`.dedupe` and :mod:`.metadata`, which load panoptes_client, so that the command line
can offer them without loading it.
"""

KEEP_CHOICES = ("oldest", "newest")
MODES = ("merge", "replace")
