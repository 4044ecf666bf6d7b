"""Active learning for the labelling loop: the pool, volunteer consensus, batch selection, images.

Everything here works offline on local files, so a round can be planned, replayed and tested
without Panoptes; the DAG and its operators call these functions and do the talking to Panoptes.
"""
