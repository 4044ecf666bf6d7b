"""Which exports Panoptes builds for each kind of resource.

Apart from :mod:`.export_requests`, which loads panoptes_client and requests, so that the command
line can offer the types without loading them.
"""

EXPORT_TYPES = {
    "project": ("classifications", "subjects", "workflows"),
    "workflow": ("classifications",),
    "subject_set": ("classifications",),
}
