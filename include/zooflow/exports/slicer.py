"""The old import path of the slicer, kept until its callers import ``zooflow.exports.slicing``."""

from zooflow.exports.slicing import PARTITION, SliceReport, slice_export

__all__ = ["PARTITION", "SliceReport", "slice_export"]
