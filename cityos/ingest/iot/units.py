"""Unit conversion for measures, by UN/CEFACT common codes (the NGSI-LD ``unitCode``; ED-DP-1).

An attribute provisioned with ``"sourceUnit": "FAH", "unitCode": "CEL"`` receives Fahrenheit from
the device and stores Celsius.  Each quantity converts through one base unit.
"""

from __future__ import annotations

from collections.abc import Callable

# code -> (quantity, to base, from base)
_LINEAR: dict[str, tuple[str, float]] = {
    # length, base metre
    "MTR": ("length", 1.0), "CMT": ("length", 0.01), "MMT": ("length", 0.001),
    "KMT": ("length", 1000.0), "INH": ("length", 0.0254), "FOT": ("length", 0.3048),
    "SMI": ("length", 1609.344),
    # speed, base metre per second
    "MTS": ("speed", 1.0), "KMH": ("speed", 1 / 3.6), "HM": ("speed", 0.44704),
    # pressure, base pascal
    "PAL": ("pressure", 1.0), "A97": ("pressure", 100.0), "KPA": ("pressure", 1000.0),
    "BAR": ("pressure", 100000.0), "MBR": ("pressure", 100.0),
    # mass, base kilogram
    "KGM": ("mass", 1.0), "GRM": ("mass", 0.001), "LBR": ("mass", 0.45359237),
    # energy, base joule; power, base watt
    "JOU": ("energy", 1.0), "KWH": ("energy", 3.6e6), "WHR": ("energy", 3600.0),
    "WTT": ("power", 1.0), "KWT": ("power", 1000.0),
    # volume, base cubic metre
    "MTQ": ("volume", 1.0), "LTR": ("volume", 0.001),
}
_TEMPERATURE: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "CEL": (lambda c: c, lambda c: c),
    "FAH": (lambda f: (f - 32) * 5 / 9, lambda c: c * 9 / 5 + 32),
    "KEL": (lambda k: k - 273.15, lambda c: c + 273.15),
}
UNITS = frozenset(_LINEAR) | frozenset(_TEMPERATURE)


class UnitError(ValueError):
    """Two units that do not measure the same quantity, or an unknown code."""


def converter(source: str, target: str) -> Callable[[float], float]:
    """A function converting numbers from unit ``source`` to unit ``target``."""
    if source == target:
        return lambda x: x
    if source in _TEMPERATURE and target in _TEMPERATURE:
        to_base, from_base = _TEMPERATURE[source][0], _TEMPERATURE[target][1]
        return lambda x: from_base(to_base(x))
    if source in _LINEAR and target in _LINEAR:
        (q1, f1), (q2, f2) = _LINEAR[source], _LINEAR[target]
        if q1 == q2:
            factor = f1 / f2
            return lambda x: x * factor
        raise UnitError(f"{source} ({q1}) cannot convert to {target} ({q2})")
    unknown = [u for u in (source, target) if u not in UNITS]
    raise UnitError(f"unknown unit code(s) {', '.join(unknown)}; known: {', '.join(sorted(UNITS))}"
                    if unknown else f"{source} cannot convert to {target}")
