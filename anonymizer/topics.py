"""Per-account topic taxonomies: boolean keyword rules an admin can edit."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

_WORD = re.compile(r"\w+")
# Rule syntax: quoted phrases, parentheses, and anything else up to whitespace or a bracket.
_RULE_TOKEN = re.compile(r'\s*(?:(?P<quote>"[^"]*"?)|(?P<paren>[()])|(?P<bare>[^\s()"]+))')
OPERATORS = frozenset({"AND", "OR", "NOT"})


class TaxonomyError(ValueError):
    """A topic rule that cannot be parsed; the message says where and why."""


@dataclass(frozen=True, slots=True)
class _Words:
    """The lowercase words of one text, prepared once for every rule."""

    words: frozenset[str]
    joined: str
    # The wildcard prefixes of the taxonomy that start some word of the text.
    prefixes: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Term:
    words: tuple[str, ...]
    prefix: bool

    def matches(self, text: _Words) -> bool:
        """Whether the keyword or phrase occurs on word boundaries."""
        if len(self.words) == 1:
            word = self.words[0]
            if not self.prefix:
                return word in text.words
            return word in text.prefixes
        phrase = " " + " ".join(self.words)
        if not self.prefix:
            return phrase + " " in text.joined
        return phrase in text.joined


@dataclass(frozen=True, slots=True)
class _Not:
    operand: _Node

    def matches(self, text: _Words) -> bool:
        """Negation of the operand."""
        return not self.operand.matches(text)


@dataclass(frozen=True, slots=True)
class _All:
    operands: tuple[_Node, ...]

    def matches(self, text: _Words) -> bool:
        """Conjunction, stopping at the first miss."""
        return all(operand.matches(text) for operand in self.operands)


@dataclass(frozen=True, slots=True)
class _Any:
    operands: tuple[_Node, ...]
    # Plain keywords and wildcards of a disjunction are tested as two set intersections,
    # which is what makes long "a OR b OR c*" rules cheap.
    exact: frozenset[str]
    prefixes: frozenset[str]
    others: tuple[_Node, ...]

    @classmethod
    def of(cls, operands: tuple[_Node, ...]) -> _Any:
        """A disjunction with its single-word operands pulled out for set tests."""
        single = [o for o in operands if isinstance(o, _Term) and len(o.words) == 1]
        return cls(
            operands,
            frozenset(o.words[0] for o in single if not o.prefix),
            frozenset(o.words[0] for o in single if o.prefix),
            tuple(o for o in operands if not (isinstance(o, _Term) and len(o.words) == 1)),
        )

    def matches(self, text: _Words) -> bool:
        """Disjunction, stopping at the first hit."""
        if not self.exact.isdisjoint(text.words) or not self.prefixes.isdisjoint(text.prefixes):
            return True
        return any(operand.matches(text) for operand in self.others)


_Node = _Term | _Not | _All | _Any


def _words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class _Parser:
    """Recursive descent over: or := and (OR and)*; and := not (AND not)*; not := NOT not | atom."""

    def __init__(self, topic: str, rule: str) -> None:
        self.topic = topic
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        rule = rule.rstrip()
        while position < len(rule):
            match = _RULE_TOKEN.match(rule, position)
            if match is None or match.lastgroup is None:
                self.fail(f"cannot read {rule[position:]!r}", position)
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        self.index = 0

    def fail(self, problem: str, position: int | None = None) -> NoReturn:
        where = f" at character {position + 1}" if position is not None else ""
        raise TaxonomyError(f"topic {self.topic!r}{where}: {problem}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def is_operator(self, name: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "bare" and token[1] == name

    def parse(self) -> _Node:
        if not self.tokens:
            self.fail("the rule is empty")
        node = self.parse_or()
        token = self.peek()
        if token is not None:
            if token[1] == ")":
                self.fail("')' without a matching '('", token[2])
            if token[1].upper() in OPERATORS:
                self.fail(f"write the operator {token[1].upper()!r} in capitals", token[2])
            self.fail(f"expected AND or OR before {token[1]!r}", token[2])
        return node

    def parse_or(self) -> _Node:
        operands = [self.parse_and()]
        while self.is_operator("OR"):
            self.index += 1
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else _Any.of(tuple(operands))

    def parse_and(self) -> _Node:
        operands = [self.parse_not()]
        while self.is_operator("AND"):
            self.index += 1
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else _All(tuple(operands))

    def parse_not(self) -> _Node:
        if self.is_operator("NOT"):
            self.index += 1
            return _Not(self.parse_not())
        return self.parse_atom()

    def parse_atom(self) -> _Node:
        token = self.peek()
        if token is None:
            self.fail("the rule ends where a keyword or '(' was expected")
        kind, text, position = token
        self.index += 1
        if kind == "paren":
            if text == ")":
                self.fail("a keyword or '(' was expected before ')'", position)
            node = self.parse_or()
            closing = self.peek()
            if closing is None or closing[1] != ")":
                self.fail("'(' is never closed", position)
            self.index += 1
            return node
        if kind == "bare" and text in OPERATORS:
            self.fail(f"{text} needs a keyword before and after it", position)
        if kind == "bare" and text.upper() in OPERATORS:
            self.fail(f"write the operator {text.upper()!r} in capitals, or quote it", position)
        if kind == "quote":
            if len(text) < 2 or not text.endswith('"'):
                self.fail("a quoted phrase is never closed", position)
            text = text[1:-1]
        return self.term(text, position)

    def term(self, text: str, position: int) -> _Term:
        prefix = text.endswith("*")
        body = text[:-1] if prefix else text
        if "*" in body:
            self.fail(f"'*' may only end a keyword: {text!r}", position)
        words = tuple(_words_of(body))
        if not words:
            self.fail(f"{text!r} contains no letters or digits", position)
        if prefix and len(words[-1]) < 3:
            # A two-letter prefix would match half the language.
            self.fail(f"a wildcard needs at least 3 letters before '*': {text!r}", position)
        return _Term(words, prefix)


def _terms(node: _Node) -> list[_Term]:
    if isinstance(node, _Term):
        return [node]
    if isinstance(node, _Not):
        return _terms(node.operand)
    return [term for operand in node.operands for term in _terms(operand)]


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """Named topics, each a compiled boolean rule over keywords and phrases."""

    rules: tuple[tuple[str, _Node], ...]
    source: tuple[tuple[str, str], ...]
    # One pattern finds the words that start with any wildcard prefix, so a text is scanned
    # once for all rules instead of once per keyword.
    prefix_words: re.Pattern[str] | None
    prefixes: frozenset[str]
    prefix_lengths: tuple[int, ...]

    @classmethod
    def parse(cls, rules: Mapping[str, str]) -> Taxonomy:
        """Compile topic -> rule text, raising TaxonomyError with the topic and position."""
        compiled = []
        for topic, rule in rules.items():
            if not topic.strip():
                raise TaxonomyError("a topic needs a name")
            compiled.append((topic, _Parser(topic, rule).parse()))
        prefixes = frozenset(
            term.words[0]
            for _topic, node in compiled
            for term in _terms(node)
            if term.prefix and len(term.words) == 1
        )
        pattern = None
        if prefixes:
            alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
            pattern = re.compile(rf"(?<!\w)(?=(?:{alternatives}))\w+")
        return cls(
            tuple(compiled),
            tuple(rules.items()),
            pattern,
            prefixes,
            tuple(sorted({len(p) for p in prefixes})),
        )

    def topics(self, text: str) -> list[str]:
        """The topics whose rule holds for the text, in taxonomy order."""
        lowered = text.lower()
        words = _WORD.findall(lowered)
        started: set[str] = set()
        if self.prefix_words is not None:
            for word in self.prefix_words.findall(lowered):
                started.update(
                    word[:size] for size in self.prefix_lengths if word[:size] in self.prefixes
                )
        prepared = _Words(frozenset(words), " " + " ".join(words) + " ", frozenset(started))
        return [topic for topic, node in self.rules if node.matches(prepared)]


DEFAULT_RULES: dict[str, str] = {
    "delivery": (
        "liefer* OR paket* OR sendung* OR versand* OR zustell* OR bote OR packstation OR "
        'tracking OR "zu spät" OR verspät* OR deliver* OR parcel* OR package* OR shipping OR '
        "shipped OR courier OR driver OR fahrer OR dhl OR hermes OR dpd OR ups"
    ),
    "billing": (
        "rechnung* OR abbuch* OR abgebucht OR lastschrift* OR zahlung* OR bezahl* OR "
        "mahnung* OR gutschrift* OR erstattung* OR rückerstattung* OR belastet OR "
        "bankverbindung OR invoice* OR bill OR billing OR billed OR charged OR charge OR "
        "debited OR refund* OR payment* OR credit"
    ),
    "outage": (
        'störung* OR ausfall OR ausgefallen OR "kein netz" OR "kein internet" OR '
        '"ohne strom" OR "keinen empfang" OR "fällt aus" OR outage* OR "no signal" OR '
        '"no internet" OR "down since" OR "is down" OR "internet down" OR "keeps dropping" OR '
        '"bricht ständig ab" OR "not working" OR "funktioniert nicht" OR "geht nicht"'
    ),
    "app_website": (
        "app OR apps OR website OR webseite OR homepage OR login OR anmeldung OR "
        "einloggen OR passwort OR password OR kundenkonto OR online OR update OR chatbot"
    ),
    "staff": (
        "mitarbeiter* OR hotline OR kundenservice OR techniker* OR berater* OR beratung OR "
        "fahrer OR schalter OR support OR agent OR staff OR engineer OR advisor OR "
        '"customer service" OR rude OR unfreundlich* OR unhöflich* OR freundlich* OR helpful'
    ),
    "price": (
        "preis* OR teuer* OR kosten OR gebühr* OR tarif* OR rabatt* OR gutschein* OR "
        "price* OR pricing OR expensive OR cost OR costs OR fee OR fees OR discount* OR "
        "voucher* OR cheap*"
    ),
    "praise": (
        "(danke* OR lob OR top OR super OR klasse OR spitze OR toll* OR begeistert OR "
        "zufrieden OR weiterempfehlen OR thanks OR thank OR great OR love OR awesome OR "
        "excellent OR brilliant OR kudos OR recommend OR impressed) AND NOT (enttäuscht OR "
        'disappointed OR "danke für nichts" OR "thanks for nothing")'
    ),
    "returns": (
        "retour* OR rücksend* OR zurückgeschickt OR zurückschicken OR umtausch* OR widerruf* OR "
        'return OR returns OR returned OR exchange OR "sent back" OR "send back"'
    ),
    "contract": (
        "vertrag* OR kündig* OR laufzeit OR verlänger* OR contract* OR cancel* OR "
        '"minimum term" OR renewal'
    ),
}
DEFAULT = Taxonomy.parse(DEFAULT_RULES)
