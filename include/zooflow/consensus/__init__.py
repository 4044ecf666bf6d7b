"""Consensus labels from volunteers' votes: majority or volunteer skill (Dawid–Skene), and how many
votes each subject needed before its label was clear (early retirement)."""


def confidence(text: str) -> float | str:
    """A retire confidence as typed (command line, form): a probability, or ``auto``. Here, in the
    package's light module, so the command line can parse it without loading numpy."""
    return "auto" if str(text).strip().lower() == "auto" else float(text)
