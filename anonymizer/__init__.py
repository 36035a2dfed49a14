"""Personal-data detection and redaction for customer posts."""

from anonymizer.detect import ENTITY_TYPES, Entity, find_entities
from anonymizer.redact import Redaction, anonymize_text, redact

__all__ = ["ENTITY_TYPES", "Entity", "Redaction", "anonymize_text", "find_entities", "redact"]
