"""How Panoptes turns a project's display name into its slug, for zooflow and for its sandbox alike.

Panoptes (Rails) uses ``String#parameterize``: transliterate to ASCII, lower case, runs of anything
else to one dash. zooflow finds projects by ``owner/slug``, so a name with accents or symbols must
give the slug Panoptes gives, and the sandbox must give the same one. No imports beyond the standard
library, so the sandbox can use it without the client.
"""

from __future__ import annotations

import re
import unicodedata

# Rails' default transliterations (I18n) of letters that Unicode does not decompose into ASCII ones.
_APPROXIMATIONS = str.maketrans({
    "Æ": "AE", "æ": "ae", "Ð": "D", "ð": "d", "Ø": "O", "ø": "o", "Þ": "TH", "þ": "th", "ß": "ss",
    "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i", "Ĳ": "IJ", "ĳ": "ij", "ĸ": "k", "Ŀ": "L", "ŀ": "l",
    "Ł": "L", "ł": "l", "Ŋ": "NG", "ŋ": "ng", "Œ": "OE", "œ": "oe", "Ŧ": "T", "ŧ": "t",
})


def parameterize(text: str) -> str:
    """Rails' ``parameterize``: accents dropped ("Café" -> "cafe"); a character with no ASCII
    approximation is, as Rails' "?", a separator ("Éclipse – Café Ñandú" -> "eclipse-cafe-nandu")."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APPROXIMATIONS))
    ascii_text = "".join(c if c.isascii() else "" if unicodedata.combining(c) else "?" for c in decomposed)
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
