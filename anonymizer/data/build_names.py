"""Regenerate the bundled name, city and common-word lists from faker's locale data."""

# Run once by hand (``python anonymizer/data/build_names.py``) after installing faker;
# the runtime only reads the text files, so faker never becomes a runtime dependency.

from __future__ import annotations

import importlib
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import faker

HERE = Path(__file__).parent
PERSON_LOCALES = ("de_DE", "de_AT", "de_CH", "tr_TR", "pl_PL", "ru_RU", "en_US", "en_GB", "en_IE")
CITY_LOCALES = ("de_DE", "de_AT", "de_CH")
WORD_LOCALES = ("de_DE", "en_US")

# faker's Arabic locales hold Arabic script only; customers on German social media write
# these names in Latin letters, so a short list of common transliterations is added here.
ARABIC_FIRST = """
Abdallah Abdel Abdul Abdullah Abdulrahman Adel Adnan Ahmad Ahmed Aisha Aischa Ali Alia Amal
Amin Amina Amir Amira Amr Anas Asma Ayman Aya Ayah Aziz Bilal Dalia Fadi Farah Faris Fatima
Fatma Hadi Hala Hamza Hana Hani Hasan Hassan Hiba Hind Hussein Husam Ibrahim Imad Iman Ismail
Jamal Jamil Karim Khaled Khalid Khalil Layla Leila Lina Mahmoud Mahmud Majid Malik Mariam Maryam
Mohamed Mohammad Mohammed Muhammad Mustafa Mona Nabil Nadia Nadine Naim Nasser Nour Nur Omar Osama
Rami Rana Rania Rashid Reem Riad Sabri Said Salah Salim Salma Sami Samir Samira Sara Sarah Selim
Tarek Tariq Walid Yasmin Yasmina Yousef Youssef Yusuf Zaid Zainab Zakaria Ziad
"""
ARABIC_LAST = """
Abbas Abdallah Abdelaziz Abdullah Ahmadi Al-Ahmad Al-Ali Al-Hassan Al-Khatib Al-Masri Al-Zein
Aziz Barakat Bakr Darwish Farouk Haddad Hamdan Hamdi Hassan Hussein Ibrahim Issa Jaber Kassem
Khalil Khoury Mahmoud Mansour Masri Mustafa Nasser Obeid Omar Osman Qasim Rahman Saad Saleh
Salem Shaheen Suleiman Yassin Younes Youssef Zaki
"""

# faker's tr_TR lists miss some of the most common Turkish names.
TURKISH_FIRST = """
Ahmet Ali Ayşe Aysel Burak Can Cem Ebru Elif Emine Emre Esra Fatih Fatma Gül Hakan Hasan Hatice
Hülya Hüseyin İbrahim Kemal Leyla Mehmet Melek Merve Murat Mustafa Ömer Özlem Serkan Sibel Tuğba
Yusuf Zehra Zeynep
"""
TURKISH_LAST = """
Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Kılıç Aslan
Çetin Kara Koç Kurt Özkan Şimşek Polat Korkmaz Erdoğan Güneş Acar Aksoy Avcı Bulut Keskin Tekin
"""

# faker's German place names are mostly small towns; the big cities are added by hand.
CITIES = """
Berlin Hamburg München Köln Frankfurt Stuttgart Düsseldorf Leipzig Dortmund Essen Bremen Dresden
Hannover Nürnberg Duisburg Bochum Wuppertal Bielefeld Bonn Münster Mannheim Karlsruhe Augsburg
Wiesbaden Mönchengladbach Gelsenkirchen Aachen Braunschweig Kiel Chemnitz Halle Magdeburg Freiburg
Krefeld Mainz Lübeck Erfurt Oberhausen Rostock Kassel Hagen Potsdam Saarbrücken Hamm Ludwigshafen
Oldenburg Mülheim Osnabrück Leverkusen Darmstadt Heidelberg Solingen Herne Regensburg Neuss
Paderborn Ingolstadt Offenbach Würzburg Fürth Ulm Heilbronn Pforzheim Wolfsburg Göttingen Bottrop
Reutlingen Koblenz Bremerhaven Recklinghausen Erlangen Bergisch Jena Remscheid Trier Salzgitter
Moers Siegen Hildesheim Cottbus Greifswald Schwerin Wien Graz Linz Salzburg Innsbruck Zürich
Genf Basel Bern Lausanne Luzern Winterthur
"""

# Latin spelling of Cyrillic as it shows up in German posts (Duden-like, not ISO 9).
CYRILLIC = {
    "а": "a", "б": "b", "в": "w", "г": "g", "д": "d", "е": "e", "ё": "jo", "ж": "sch",
    "з": "s", "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "ch", "ц": "z",
    "ч": "tsch", "ш": "sch", "щ": "schtsch", "ъ": "", "ы": "y", "ь": "", "э": "e",
    "ю": "ju", "я": "ja",
}  # fmt: skip
# The English spelling is as common, above all for younger writers and in English posts.
CYRILLIC_EN = {**CYRILLIC, "в": "v", "ж": "zh", "з": "z", "й": "y", "х": "kh", "ц": "ts",
               "ч": "ch", "ш": "sh", "щ": "shch", "ю": "yu", "я": "ya", "ё": "yo"}  # fmt: skip


def transliterate(name: str, table: dict[str, str]) -> str:
    """Return a Cyrillic name in Latin letters with its capitalisation kept."""
    out = "".join(table.get(ch.lower(), ch) for ch in name)
    return out[:1].upper() + out[1:]


def provider_names(module: str, kind: str) -> set[str]:
    """Return every name in a faker person provider whose attribute mentions ``kind``."""
    provider = importlib.import_module(f"faker.providers.person.{module}").Provider
    names: set[str] = set()
    for attr in dir(provider):
        value = getattr(provider, attr)
        if attr.startswith("_") or kind not in attr or not isinstance(value, tuple | list | dict):
            continue
        names.update(str(v) for v in value)
    return names


def clean(names: Iterable[str]) -> list[str]:
    """Return single-word Latin-script names (hyphens kept), sorted, without duplicates."""
    kept = set()
    for raw in names:
        for name in raw.split():
            name = unicodedata.normalize("NFC", name.strip())
            if len(name) >= 2 and all(ch.isalpha() or ch in "-'" for ch in name):
                kept.add(name)
    return sorted(kept, key=str.casefold)


def write(path: Path, what: str, names: list[str]) -> None:
    """Write one list with a header naming its source and licence."""
    header = (
        f"# {what}, one per line. Generated by anonymizer/data/build_names.py from\n"
        f"# Faker {faker.VERSION} locale providers (MIT License, (c) Daniele Faraglia and Faker\n"
        "# contributors; https://github.com/joke2k/faker), Cyrillic names also transliterated,\n"
        "# plus hand-written lists of common Arabic (in Latin letters) and Turkish names\n"
        "# (facts, no copyright claimed). Redistributable under the MIT License terms.\n"
    )
    path.write_text(header + "\n".join(names) + "\n", encoding="utf-8")


def main() -> None:
    """Build first_names.txt, surnames.txt, cities.txt and common_words.txt."""
    first: set[str] = set(ARABIC_FIRST.split()) | set(TURKISH_FIRST.split())
    last: set[str] = set(ARABIC_LAST.split()) | set(TURKISH_LAST.split())
    for locale in PERSON_LOCALES:
        first |= provider_names(locale, "first_name")
        last |= provider_names(locale, "last_name")
    for kind, target in (("first_name", first), ("last_name", last)):
        for name in provider_names("ru_RU", kind):
            target.update({transliterate(name, CYRILLIC), transliterate(name, CYRILLIC_EN)})
    cities: set[str] = set(CITIES.split())
    for locale in CITY_LOCALES:
        provider = importlib.import_module(f"faker.providers.address.{locale}").Provider
        cities.update(provider.cities)
    words: set[str] = set()
    for locale in WORD_LOCALES:
        provider = importlib.import_module(f"faker.providers.lorem.{locale}").Provider
        words.update(w.casefold() for w in provider.word_list)
    write(HERE / "first_names.txt", "First names", clean(first))
    write(HERE / "surnames.txt", "Surnames", clean(last))
    write(HERE / "cities.txt", "German, Austrian and Swiss place names", sorted(cities))
    write(HERE / "common_words.txt", "Common German and English words", sorted(words))


if __name__ == "__main__":
    main()
