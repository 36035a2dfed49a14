"""Personal-data detection and redaction for customer posts."""

from anonymizer.detect import Entity, find_entities
from anonymizer.redact import Redaction, anonymize_text, redact

__all__ = ["Entity", "Redaction", "anonymize_text", "find_entities", "redact"]
