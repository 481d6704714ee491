"""Small helpers shared by the demo builders: NGSI-LD attribute shapes, ids, times and places."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

JST = timezone(timedelta(hours=9))
# the instant the demo city is a snapshot of: a Tuesday evening just after sunset
SNAPSHOT = datetime(2025, 11, 25, 17, 30, tzinfo=JST)
SEED = 20251125

PREFECTURE = "兵庫県"
CITY = "神戸市"
CITY_CODE_5 = "28100"
DATA_PROVIDER = "CityOS demo (synthetic data)"

# ward (ja) -> (English name, 5-digit local government code)
WARDS: dict[str, tuple[str, str]] = {
    "東灘区": ("Higashinada", "28101"),
    "灘区": ("Nada", "28102"),
    "兵庫区": ("Hyogo", "28105"),
    "長田区": ("Nagata", "28106"),
    "須磨区": ("Suma", "28107"),
    "垂水区": ("Tarumi", "28108"),
    "北区": ("Kita", "28109"),
    "中央区": ("Chuo", "28110"),
    "西区": ("Nishi", "28111"),
}


def lg_code(code5: str) -> str:
    """The 6-digit 全国地方公共団体コード: the 5-digit code plus its JIS X 0401 check digit."""
    total = sum(int(d) * w for d, w in zip(code5, (6, 5, 4, 3, 2), strict=True))
    check = (11 - total % 11) % 11
    return code5 + str(check % 10)


CITY_CODE = lg_code(CITY_CODE_5)  # "281000"


# --- NGSI-LD normalized attribute shapes ------------------------------------------------------

def prop(value: Any, *, unit: str | None = None, observed: str | None = None) -> dict[str, Any]:
    """A Property, with an optional ``unitCode`` and ``observedAt``."""
    attr: dict[str, Any] = {"type": "Property", "value": value}
    if unit is not None:
        attr["unitCode"] = unit
    if observed is not None:
        attr["observedAt"] = observed
    return attr


def geo(lat: float, lon: float) -> dict[str, Any]:
    """A GeoProperty holding a GeoJSON Point (coordinates are [longitude, latitude])."""
    return {"type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}}


def rel(target: str) -> dict[str, Any]:
    """A Relationship to another entity."""
    return {"type": "Relationship", "object": target}


def lang(ja: str, en: str) -> dict[str, Any]:
    """A LanguageProperty with Japanese and English text."""
    return {"type": "LanguageProperty", "languageMap": {"ja": ja, "en": en}}


def date_time(moment: datetime) -> dict[str, str]:
    """A typed DateTime value, as the Smart Data Models normalized examples write them."""
    return {"@type": "DateTime", "@value": iso(moment)}


def iso(moment: datetime) -> str:
    """ISO 8601 local time with the +09:00 offset, to the second."""
    return moment.astimezone(JST).replace(microsecond=0).isoformat()


def minutes_before(minutes: float, base: datetime = SNAPSHOT) -> datetime:
    """A moment shortly before the snapshot, rounded to the second."""
    return base - timedelta(seconds=round(minutes * 60))


def urn(entity_type: str, slug: str) -> str:
    """The demo's entity id scheme: ``urn:ngsi-ld:<Type>:kobe:<slug>``."""
    return f"urn:ngsi-ld:{entity_type}:kobe:{slug}"


def address(ward: str, street: str) -> dict[str, Any]:
    """A schema.org PostalAddress Property (as the Smart Data Models use it)."""
    value = {"addressCountry": "JP", "addressRegion": PREFECTURE,
             "addressLocality": CITY + ward}
    if street:
        value["streetAddress"] = street
    return prop(value)


def full_address(ward: str, street: str) -> str:
    """The one-line Japanese address (住所) used by the Japanese recommended datasets."""
    return f"{PREFECTURE}{CITY}{ward}{street}"


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """The point ``north_m`` metres north and ``east_m`` metres east of (lat, lon)."""
    dlat = north_m / 111_320.0
    dlon = east_m / (111_320.0 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance in metres between two (lat, lon) points (fine at city scale)."""
    mean_lat = math.radians((a[0] + b[0]) / 2)
    dy = (a[0] - b[0]) * 111_320.0
    dx = (a[1] - b[1]) * 111_320.0 * math.cos(mean_lat)
    return math.hypot(dx, dy)


# --- the place registry and the other CSV tables ----------------------------------------------

@dataclass(frozen=True)
class Place:
    """A named place of the demo city (see places.csv)."""

    slug: str
    ward: str
    name_ja: str
    kana: str
    name_en: str
    street: str
    lat: float
    lon: float
    elev: float

    @property
    def address(self) -> str:
        return full_address(self.ward, self.street)


def read_table(name: str) -> list[dict[str, str]]:
    """Rows of a CSV table next to this module; lines starting with ``#`` are comments."""
    with open(HERE / name, encoding="utf-8", newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    return list(csv.DictReader(lines))


def load_places() -> dict[str, Place]:
    """The place registry, keyed by slug (insertion order = file order)."""
    places: dict[str, Place] = {}
    for row in read_table("places.csv"):
        if row["ward"] not in WARDS:
            raise ValueError(f"unknown ward {row['ward']!r} for {row['slug']}")
        if row["slug"] in places:
            raise ValueError(f"duplicate place {row['slug']}")
        places[row["slug"]] = Place(
            slug=row["slug"], ward=row["ward"], name_ja=row["name_ja"], kana=row["kana"],
            name_en=row["name_en"], street=row["address"], lat=float(row["lat"]),
            lon=float(row["lon"]), elev=float(row["elev"]))
    return places
