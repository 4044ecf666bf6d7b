"""Consensus labels from volunteers' votes: majority or volunteer skill (Dawid–Skene), and how many
votes each subject needed before its label was clear (early retirement)."""
