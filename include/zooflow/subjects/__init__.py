"""Subjects and subject sets: uploads, duplicates, metadata."""
