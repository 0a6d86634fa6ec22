"""Offline time-zone lookup for the called party: phone number (area code) and US postal code.

- Phone: `phonenumbers.timezone.time_zones_for_number` (geographic data shipped with the library);
  numbers without a region default to +1 (US/NANP). Non-geographic numbers (toll-free: dozens of
  zones) count as unknown.
- Postal code: the `zipcodes` package's bundled ZIP table (its `timezone` field). Five-digit ZIPs and
  ZIP+4 are looked up exactly; a partial ZIP such as "275XX" (CFPB masking) or a ZIP whose row has no
  zone falls back to the zones of every ZIP sharing its 3-digit prefix. A 4-digit code is taken as a
  ZIP that lost its leading zero ("2108" -> "02108").

Zones with the same UTC offsets all year (America/Detroit and America/New_York, ...) are merged into
one canonical name, so "ambiguous" means the candidates really differ in local time.
"""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Dict, FrozenSet, Iterable, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

EXACT = "exact"  # one zone
AMBIGUOUS = "ambiguous"  # several candidate zones, all checked
UNKNOWN = "unknown"  # nothing resolved: the fallback zones are checked

# Preferred canonical names when several IANA zones behave identically.
_PREFERRED = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
)
# More distinct zones than this from one source means the source says nothing about location.
MAX_ZONES_PER_SOURCE = 3

_ZIP5 = re.compile(r"^(\d{5})(?:-?\d{4})?$")
_ZIP_PARTIAL = re.compile(r"^(\d{3})[0-9X*]{2}$", re.IGNORECASE)


@lru_cache(maxsize=None)
def _signature(zone: str) -> Optional[Tuple[int, ...]]:
    """UTC offsets (minutes) at two instants per month over 2024-2027; None for an unknown zone."""
    try:
        tz = ZoneInfo(zone)
    except Exception:  # noqa: BLE001  (ZoneInfoNotFoundError, ValueError on odd names)
        return None
    out = []
    for year in range(2024, 2028):
        for month in range(1, 13):
            for day in (1, 15):
                t = dt.datetime(year, month, day, 12, tzinfo=dt.timezone.utc).astimezone(tz)
                out.append(int(t.utcoffset().total_seconds() // 60))
    return tuple(out)


@lru_cache(maxsize=None)
def _canonical_by_signature() -> Dict[Tuple[int, ...], str]:
    return {_signature(z): z for z in reversed(_PREFERRED)}


@lru_cache(maxsize=None)
def canonical_zone(zone: Optional[str]) -> Optional[str]:
    """A valid IANA zone merged with its equivalent preferred name; None when not a zone."""
    if not zone or zone == "Etc/Unknown":
        return None
    sig = _signature(zone)
    if sig is None:
        return None
    return _canonical_by_signature().get(sig, zone)


def _canonical_set(zones: Iterable[Optional[str]]) -> Tuple[str, ...]:
    return tuple(sorted({c for c in (canonical_zone(z) for z in zones) if c}))


@lru_cache(maxsize=200_000)
def zones_for_phone(number: Optional[str], default_region: str = "US") -> Tuple[str, ...]:
    """Candidate zones of a phone number; () when unknown (unparseable, non-geographic, toll-free)."""
    if number is None:
        return ()
    text = str(number).strip()
    if not text or sum(ch.isdigit() for ch in text) < 7:
        return ()
    import phonenumbers
    from phonenumbers import timezone as pn_timezone

    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return ()
    if not phonenumbers.is_possible_number(parsed):
        return ()
    zones = _canonical_set(pn_timezone.time_zones_for_number(parsed))
    return zones if 0 < len(zones) <= MAX_ZONES_PER_SOURCE else ()


@lru_cache(maxsize=None)
def _zip_tables() -> Tuple[Dict[str, str], Dict[str, FrozenSet[str]]]:
    """(zip5 -> canonical zone, 3-digit prefix -> canonical zones) from the bundled zipcodes table."""
    import zipcodes

    exact: Dict[str, str] = {}
    prefix: Dict[str, set] = {}
    for row in zipcodes.list_all():
        zone = canonical_zone(row.get("timezone") or None)
        if not zone:
            continue
        code = row["zip_code"]
        exact[code] = zone
        prefix.setdefault(code[:3], set()).add(zone)
    return exact, {k: frozenset(v) for k, v in prefix.items()}


def normalise_postal(code: Optional[str]) -> Optional[str]:
    """'27514-1234' -> '27514'; '275XX' -> '275XX'; '2108' -> '02108'; None for anything else."""
    if code is None:
        return None
    text = str(code).strip().upper()
    if text.endswith(".0"):  # a ZIP read as a float by a spreadsheet or pandas
        text = text[:-2]
    if re.fullmatch(r"\d{4}", text):
        text = "0" + text
    m = _ZIP5.match(text)
    if m:
        return m.group(1)
    if _ZIP_PARTIAL.match(text):
        return text[:3] + "XX"
    return None


@lru_cache(maxsize=200_000)
def zones_for_postal(code: Optional[str]) -> Tuple[str, ...]:
    """Candidate zones of a US postal code; () when unknown (not a ZIP, not in the table, too spread)."""
    norm = normalise_postal(code)
    if norm is None:
        return ()
    exact, prefix = _zip_tables()
    if norm[3:] != "XX" and norm in exact:
        return (exact[norm],)
    zones = tuple(sorted(prefix.get(norm[:3], ())))
    return zones if 0 < len(zones) <= MAX_ZONES_PER_SOURCE else ()


def resolve_zones(
    phone: Optional[str],
    postal: Optional[str],
    source: str = "both",
    fallback: Sequence[str] = ("America/New_York", "America/Los_Angeles"),
) -> Tuple[Tuple[str, ...], str]:
    """(zones to check, status) for one contact.

    source="both": the union of the phone's and the postal code's zones (a contact must be allowed in
    every place the customer may be); "phone_first" / "postal_first": the first that resolves.
    Nothing resolved: the fallback zones with status "unknown".
    """
    by_phone = zones_for_phone(phone)
    by_postal = zones_for_postal(postal)
    if source == "phone_first":
        zones = by_phone or by_postal
    elif source == "postal_first":
        zones = by_postal or by_phone
    else:
        zones = tuple(sorted(set(by_phone) | set(by_postal)))
    if not zones:
        return _canonical_set(fallback) or tuple(fallback), UNKNOWN
    return zones, EXACT if len(zones) == 1 else AMBIGUOUS
