"""Enrichment of redacted text: language and coarse topics."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

SUPPORTED_LANGUAGES = ("de", "en")

# A first, deliberately small taxonomy; the admin-editable one replaces it later.
TOPIC_KEYWORDS: dict[str, tuple[str, ...]] = {
    "delivery": ("liefer", "paket", "sendung", "versand", "deliver", "parcel", "shipping", "dhl"),
    "billing": ("rechnung", "abbuch", "zahlung", "bezahl", "invoice", "charge", "refund", "geld"),
    "returns": ("retour", "rücksend", "umtausch", "return", "exchange", "widerruf"),
    "product": ("kaputt", "defekt", "qualität", "broken", "defect", "quality", "produkt"),
    "service": ("hotline", "warte", "erreich", "support", "service", "kundenservice"),
    "praise": ("danke", "super", "toll", "top", "thanks", "great", "love", "awesome", "klasse"),
}
_WORD = re.compile(r"\w+", re.UNICODE)


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED_LANGUAGES))
    return identifier


def language(text: str) -> str:
    """Tell German from English; 'und' where the text has too few words to say."""
    if len(_WORD.findall(text)) < 2:
        return "und"
    code, _probability = _identifier().classify(text)
    return str(code)


def topics(text: str) -> list[str]:
    """Name the taxonomy topics whose keywords occur in the text."""
    lowered = text.lower()
    return [
        topic for topic, stems in TOPIC_KEYWORDS.items() if any(stem in lowered for stem in stems)
    ]
