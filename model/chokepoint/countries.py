"""Country identity: one canonical key (ISO3) per country, whatever spelling a user or a data
source uses.

ISO 3166 names and codes come from pycountry; the Trade Map spellings and everyday words it does
not know are in ``country_aliases.yaml`` beside this module. Owners that are not countries
("Other", IFASTAT regions) keep their own name as key.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources

import pycountry
import yaml

from .errors import ScenarioError, did_you_mean


def _fold(name: str) -> str:
    """Case- and accent-insensitive form: 'Côte d'Ivoire' and "cote d'ivoire" fold alike."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(plain.replace("’", "'").lower().split())


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    text = resources.files(__package__).joinpath("country_aliases.yaml").read_text("utf-8")
    table = yaml.safe_load(text)
    return {_fold(k): v for group in table.values() for k, v in group.items()}


def aliases() -> dict[str, str]:
    """Everyday words and Trade Map spellings (folded) -> ISO3."""
    return dict(_aliases())


@lru_cache(maxsize=4096)
def iso3(name: str) -> str | None:
    """ISO3 code of a country name, code or alias; ``None`` if it names no country."""
    folded = _fold(str(name))
    if not folded:
        return None
    if folded in _aliases():
        return _aliases()[folded]
    try:
        return pycountry.countries.lookup(str(name).strip()).alpha_3
    except LookupError:
        pass
    return _folded_iso_names().get(folded)  # accent-insensitive match of the ISO names


@lru_cache(maxsize=1)
def _folded_iso_names() -> dict[str, str]:
    out: dict[str, str] = {}
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            out.setdefault(_fold(getattr(country, attr, "") or ""), country.alpha_3)
    out.pop("", None)
    return out


def key(name: str) -> str:
    """Canonical key of a node owner or focal member: ISO3 for countries, else the name."""
    return iso3(name) or str(name)


def label(iso: str) -> str:
    """A readable name for an ISO3 key (the key itself for non-countries)."""
    country = pycountry.countries.get(alpha_3=iso)
    return getattr(country, "common_name", None) or country.name if country else iso


def resolve(name: str, known_owners: list[str], where: str) -> str:
    """Key of a user-typed country. ``known_owners`` are the owners the networks hold, which are
    accepted verbatim (regions, ``Other``); an unknown name is an error with a suggestion."""
    text = str(name).strip()
    for owner in known_owners:
        if _fold(owner) == _fold(text):
            return key(owner)
    code = iso3(text)
    if code is not None:
        return code
    choices = list(known_owners) + [c.name for c in pycountry.countries]
    raise ScenarioError(
        f"{where}: unknown country {text!r}{did_you_mean(text, choices)}"
    )
