"""Exports: request with the 24-hour rule, wait, download, slice and flatten."""
