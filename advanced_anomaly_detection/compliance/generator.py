"""Synthetic customer journeys and complaints with labelled compliance problems (deterministic by seed).

Every customer lives somewhere real (ZIP, area code and IANA zone of a US city); some moved (phone
area code from another city), some lack a phone or give a masked ZIP (zone unknown). Contacts follow
weekday and local-hour patterns per channel (web/app visits any day into the evening; calls, texts
and emails on business days in business hours of every zone the customer may be in). Segments:
servicing, collections (frequent calls) and digital (mostly web/app).

Normal customers are contacted the way a compliant bank would: at most 5 call attempts in 7 days, no
call within 7 days after a telephone conversation, contacts only 8 a.m.-9 p.m. in every candidate
zone, contacts stop within 3 days of a revocation, no calls or texts while a TCPA complaint is open.
Hard negatives sit near the boundaries (exactly 7 calls in 6 days, calls at 8:05 a.m. / 8:55 p.m.,
contacts shortly after a revocation, one harsh but unrelated complaint).

Problem kinds (labels.kind):
- over_calling: a burst of 8-14 call attempts within 2-6 days, or calls 1-5 days after a conversation
- night_calls: 2-6 calls/texts at 9:10-11:30 p.m. or 6:00-7:45 a.m. local time
- after_revocation: consent revoked / do-not-call requested, then 3-8 calls/texts 15+ days later
- complaint_storm: 4-8 TCPA complaints in weeks, negative wording, mostly open, contacts continue
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from advanced_anomaly_detection.compliance.rules import outside_calling_hours
from advanced_anomaly_detection.compliance.timezones import resolve_zones

log = logging.getLogger(__name__)

PROBLEM_KINDS = ("over_calling", "night_calls", "after_revocation", "complaint_storm")
NORMAL = "normal"
UTC = dt.timezone.utc

# (ZIP, area code, IANA zone, population weight)
LOCATIONS: Tuple[Tuple[str, str, str, float], ...] = (
    ("10001", "212", "America/New_York", 8.0),
    ("02108", "617", "America/New_York", 3.0),
    ("27514", "919", "America/New_York", 3.0),
    ("30303", "404", "America/New_York", 4.0),
    ("33130", "305", "America/New_York", 4.0),
    ("19103", "215", "America/New_York", 3.0),
    ("48201", "313", "America/Detroit", 3.0),
    ("28202", "704", "America/New_York", 3.0),
    ("20001", "202", "America/New_York", 3.0),
    ("60601", "312", "America/Chicago", 6.0),
    ("75201", "214", "America/Chicago", 5.0),
    ("77002", "713", "America/Chicago", 5.0),
    ("55401", "612", "America/Chicago", 3.0),
    ("70112", "504", "America/Chicago", 2.0),
    ("63101", "314", "America/Chicago", 2.0),
    ("80202", "303", "America/Denver", 3.0),
    ("84101", "801", "America/Denver", 2.0),
    ("87102", "505", "America/Denver", 1.0),
    ("85004", "602", "America/Phoenix", 3.0),
    ("90012", "213", "America/Los_Angeles", 7.0),
    ("94103", "415", "America/Los_Angeles", 3.0),
    ("98101", "206", "America/Los_Angeles", 3.0),
    ("97201", "503", "America/Los_Angeles", 2.0),
    ("89101", "702", "America/Los_Angeles", 2.0),
    ("99501", "907", "America/Anchorage", 0.5),
    ("96813", "808", "Pacific/Honolulu", 0.5),
)

NEGATIVE_TEXTS = (
    "They keep calling me several times a day even after I told them to stop. This is harassment and it is awful.",
    "The collector calls me late at night and early in the morning. Terrible, abusive behavior.",
    "I revoked consent in writing and they still text me every day. Disgusting and unacceptable.",
    "I asked them to stop calling my cell phone. The calls continue and it is the worst experience I have ever had.",
    "Horrible treatment. They call my work and my family over and over. I am angry and scared.",
    "Their agents were rude and threatening on the phone. Awful, terrible service.",
)
NEUTRAL_TEXTS = (
    "I requested a copy of my statement for last month and have not received it yet.",
    "Please update my mailing address on the account. I sent the form two weeks ago.",
    "The payment I made on time was posted late and a fee was charged. I would like the fee reversed.",
    "I disputed a charge on my card and the dispute is still under review.",
    "My credit report shows an account balance that does not match my records.",
    "The interest rate on my statement is different from what was agreed when I opened the account.",
    "I would like to close my account and receive the remaining balance by check.",
    "The online banking page showed an error when I tried to set up automatic payments.",
)
HARSH_UNRELATED_TEXT = "Their branch staff were rude and the fee is ridiculous. Awful, terrible service."
TCPA_REASONS = (
    "Communication tactics",
    "Frequent or repeated calls",
    "Called after sent written request to stop",
    "Robocalls or text messages",
)
OTHER_REASONS = (
    "Billing dispute",
    "Account information incorrect",
    "Payment processing",
    "Fees or interest",
    "Managing an account",
    "Credit reporting",
)

# Local-hour preferences (index = hour of day).
_OUTBOUND_HOURS = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 9, 9, 7, 7, 8, 8, 7, 6, 5, 3, 2, 0, 0, 0], float)
_VISIT_HOURS = np.array([1, 0.5, 0.3, 0.2, 0.2, 0.5, 1, 3, 5, 6, 6, 6, 7, 6, 5, 5, 5, 6, 7, 8, 9, 8, 5, 2], float)
_OUTBOUND_WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 0.9, 0.15, 0.03])  # Mon..Sun
_VISIT_WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8])

SEGMENTS = ("servicing", "collections", "digital")
_SEGMENT_P = (0.55, 0.30, 0.15)
# Poisson means over 90 days per segment: (visits, emails, texts, inbound calls, outbound calls)
_RATES = {
    "servicing": (8, 4, 1.5, 0.8, 2.5),
    "collections": (5, 3, 3, 1.2, 11),
    "digital": (25, 3, 0.8, 0.3, 0.5),
}


@dataclass
class ComplianceData:
    journey: pd.DataFrame
    complaints: pd.DataFrame
    accounts: pd.DataFrame
    labels: pd.DataFrame
    as_of: dt.date

    def write(self, out_dir: str | Path) -> Dict[str, str]:
        """CSV files journey.csv, complaints.csv, accounts.csv, labels.csv under out_dir."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("journey", "complaints", "accounts", "labels"):
            path = out / f"{name}.csv"
            getattr(self, name).to_csv(path, index=False)
            paths[name] = str(path)
        return paths


@dataclass
class _Customer:
    key: str
    zip_code: Optional[str]
    phone: Optional[str]
    home_zone: str
    zones: Tuple[str, ...]  # every zone the bank's own lookup considers (compliant contacts fit all)
    segment: str
    kind: str
    variant: str = ""


class _Gen:
    def __init__(self, rng: np.random.Generator, start: dt.date, days: int):
        self.rng = rng
        self.start = start
        self.days = days
        self.end = start + dt.timedelta(days=days - 1)
        self._days: Dict[tuple, tuple] = {}

    # --- time helpers -------------------------------------------------------------------------
    def day(self, weekday_w: np.ndarray, lo: int = 0, hi: Optional[int] = None) -> dt.date:
        """A day in [start+lo, start+hi), drawn with the weekday weights."""
        hi = self.days if hi is None else hi
        lo, hi = max(0, lo), max(hi, lo + 1)
        key = (id(weekday_w), lo, hi)
        cached = self._days.get(key)
        if cached is None:
            dates = [self.start + dt.timedelta(days=int(o)) for o in range(lo, hi)]
            w = np.array([weekday_w[d.weekday()] for d in dates]) + 1e-9
            cached = self._days[key] = (dates, np.cumsum(w) / w.sum())
        dates, cdf = cached
        return dates[min(int(np.searchsorted(cdf, self.rng.random(), side="right")), len(dates) - 1)]

    def local(self, day: dt.date, zone: str, hour: float) -> dt.datetime:
        h = int(hour)
        m = int((hour - h) * 60)
        s = int(self.rng.integers(0, 60))
        return dt.datetime(day.year, day.month, day.day, h, m, s, tzinfo=ZoneInfo(zone)).astimezone(UTC)

    def contact_time(self, c: _Customer, day: dt.date) -> dt.datetime:
        """Business-hours outbound contact allowed in every candidate zone of the customer."""
        p = _OUTBOUND_HOURS / _OUTBOUND_HOURS.sum()
        for _ in range(40):
            hour = int(self.rng.choice(24, p=p)) + float(self.rng.random())
            ts = self.local(day, c.home_zone, hour)
            if not outside_calling_hours(ts, c.zones, 8, 21):
                return ts
        # Narrow overlap (e.g. phone in Honolulu, ZIP in New York): scan for an allowed quarter hour.
        base = dt.datetime(day.year, day.month, day.day, tzinfo=UTC)
        allowed = [base + dt.timedelta(minutes=15 * i) for i in range(96)]
        allowed = [t for t in allowed if not outside_calling_hours(t, c.zones, 8, 21)
                   and not outside_calling_hours(t + dt.timedelta(minutes=14), c.zones, 8, 21)]
        if not allowed:
            return self.local(day, c.home_zone, 14.0)
        return allowed[int(self.rng.integers(len(allowed)))] + dt.timedelta(seconds=int(self.rng.integers(0, 840)))

    def visit_time(self, c: _Customer, day: dt.date) -> dt.datetime:
        hour = int(self.rng.choice(24, p=_VISIT_HOURS / _VISIT_HOURS.sum())) + float(self.rng.random())
        return self.local(day, c.home_zone, hour)


def _event(c: _Customer, ts: dt.datetime, name: str, direction: str, visits: int = 0, outcome=None) -> dict:
    return {
        "temp_key": c.key,
        "event_ts": ts,
        "event_nm": name,
        "direction": direction,
        "visit_count": visits,
        "call_outcome": outcome,
        "phone_number": c.phone,
        "postal_code": c.zip_code,
        "consent_revoked_ts": None,
        "dnc_requested_ts": None,
    }


def _is_outbound_contact(e: dict) -> bool:
    return e["direction"] == "outbound" and e["event_nm"] in ("call", "sms")


def _schedule_calls(g: _Gen, c: _Customer, n: int, conversations: List[dt.datetime], max_per_week: int = 5) -> List[dict]:
    """Compliant outbound calls: no more than max_per_week in 7 days, none within 7 days of a conversation."""
    days = sorted(g.day(_OUTBOUND_WEEKDAY) for _ in range(n))
    times = sorted(g.contact_time(c, d) for d in days)
    convs = sorted(conversations)
    out: List[dict] = []
    accepted: List[dt.datetime] = []
    for t in times:
        last_conv = max((x for x in convs if x < t), default=None)
        if last_conv is not None and t - last_conv < dt.timedelta(days=7, hours=1):
            continue
        if sum(1 for a in accepted if t - a < dt.timedelta(days=7)) >= max_per_week:
            continue
        if accepted and t - accepted[-1] < dt.timedelta(hours=20):
            continue
        r = g.rng.random()
        outcome = "connected" if r < 0.25 else ("voicemail" if r < 0.6 else ("no_answer" if r < 0.92 else "busy"))
        accepted.append(t)
        if outcome == "connected":
            convs = sorted(convs + [t])
        out.append(_event(c, t, "call", "outbound", 0, outcome))
    # A conversation may have been accepted before a later-generated one in time order; re-check.
    conv_all = sorted(convs)
    return [
        e for e in out
        if not any(dt.timedelta(0) < e["event_ts"] - x < dt.timedelta(days=7, hours=1) for x in conv_all)
    ]


def _base_events(g: _Gen, c: _Customer) -> List[dict]:
    visits, emails, texts, inbound, outbound = _RATES[c.segment]
    rng = g.rng
    ev: List[dict] = []
    for _ in range(rng.poisson(visits)):
        name = "web_visit" if rng.random() < 0.6 else "app_login"
        ev.append(_event(c, g.visit_time(c, g.day(_VISIT_WEEKDAY)), name, "inbound", 1 + int(rng.poisson(1.5))))
    for _ in range(rng.poisson(emails)):
        ev.append(_event(c, g.contact_time(c, g.day(_OUTBOUND_WEEKDAY)), "email", "outbound"))
    for _ in range(rng.poisson(texts)):
        ev.append(_event(c, g.contact_time(c, g.day(_OUTBOUND_WEEKDAY)), "sms", "outbound"))
    if rng.random() < 0.05:
        ev.append(_event(c, g.contact_time(c, g.day(_OUTBOUND_WEEKDAY)), "letter", "outbound"))
    conversations = []
    for _ in range(rng.poisson(inbound)):
        t = g.visit_time(c, g.day(_OUTBOUND_WEEKDAY))
        conversations.append(t)
        ev.append(_event(c, t, "call", "inbound", 0, "connected"))
    ev.extend(_schedule_calls(g, c, int(rng.poisson(outbound)), conversations))
    return ev


def _conversations(ev: List[dict]) -> List[dt.datetime]:
    return [e["event_ts"] for e in ev if e["event_nm"] == "call" and e["call_outcome"] == "connected"]


def _complaint(c: _Customer, created: dt.datetime, status: str, closed: Optional[dt.datetime], reason: str, text: str) -> dict:
    return {
        "temp_key": c.key,
        "complaint_create_date": created,
        "case_edit_date": closed,
        "complaint_status": status,
        "contact_reason_primary_1": reason,
        "complaint_description": text,
        "postal_code": c.zip_code,
    }


def _drop_outbound_between(ev: List[dict], lo: dt.datetime, hi: Optional[dt.datetime]) -> List[dict]:
    return [e for e in ev if not (_is_outbound_contact(e) and e["event_ts"] >= lo and (hi is None or e["event_ts"] <= hi))]


def _revoke(ev: List[dict], when: dt.datetime, column: str) -> None:
    for e in ev:
        if e["event_ts"] >= when:
            e[column] = when


def _make_customer(g: _Gen, idx: int, kind: str) -> _Customer:
    rng = g.rng
    w = np.array([loc[3] for loc in LOCATIONS])
    home = LOCATIONS[int(rng.choice(len(LOCATIONS), p=w / w.sum()))]
    zip_code: Optional[str] = home[0]
    phone: Optional[str] = f"{home[1]}-555-01{int(rng.integers(0, 100)):02d}"
    r = rng.random()
    if r < 0.08:  # moved: phone from another city
        other = LOCATIONS[int(rng.integers(len(LOCATIONS)))]
        phone = f"{other[1]}-555-01{int(rng.integers(0, 100)):02d}"
    elif r < 0.16:
        phone = None
    elif r < 0.19:
        zip_code = None if rng.random() < 0.5 else home[0][:3] + "XX"
    elif r < 0.21:  # nothing resolves: zone unknown
        phone, zip_code = None, "XXXXX"
    zones, _status = resolve_zones(phone, zip_code)
    segment = SEGMENTS[int(rng.choice(3, p=_SEGMENT_P))]
    if kind in ("over_calling", "complaint_storm") and segment == "digital":
        segment = "collections"
    return _Customer(f"C{idx:07d}", zip_code, phone, home[2], zones, segment, kind)


def _keep_kind_pure(ev: List[dict], planted: List[dict]) -> None:
    """Planted calls of the other kinds must not also break the Regulation F call rules by accident:
    one within 7 days after a conversation, or beyond 5 calls in 7 days, becomes a text instead."""
    convs = _conversations(ev)
    calls = sorted(e["event_ts"] for e in ev if e["event_nm"] == "call" and e["direction"] == "outbound")
    for e in planted:
        if e["event_nm"] != "call" or e["direction"] != "outbound":
            continue
        t = e["event_ts"]
        near_conv = any(dt.timedelta(0) < t - x < dt.timedelta(days=7, hours=1) for x in convs)
        busy = sum(1 for x in calls if abs(t - x) < dt.timedelta(days=7)) > 5
        if near_conv or busy:
            e["event_nm"], e["call_outcome"] = "sms", None
            calls.remove(t)


def _customer_events(g: _Gen, c: _Customer) -> Tuple[List[dict], List[dict]]:
    rng = g.rng
    ev = _base_events(g, c)
    base = list(ev)  # keeps the base events alive, so their ids cannot be reused by planted ones
    base_ids = {id(e) for e in base}
    complaints: List[dict] = []
    day0 = dt.datetime.combine(g.start, dt.time(), tzinfo=UTC)

    if c.kind == NORMAL:
        r = rng.random()
        if r < 0.03:  # hard negative: exactly 7 call attempts within 6 days, nothing else by phone
            c.variant = "seven_calls_in_7_days"
            ev = [e for e in ev if not (e["event_nm"] == "call")]
            first = g.day(_OUTBOUND_WEEKDAY, 5, g.days - 10)
            for i in range(7):
                d = first + dt.timedelta(days=int(i * 6 / 7))
                ev.append(_event(c, g.contact_time(c, d), "call", "outbound", 0, "no_answer"))
        elif r < 0.06 and len(c.zones) == 1:  # hard negative: calls just inside the allowed hours
            c.variant = "calls_near_quiet_hours"
            for _ in range(int(rng.integers(2, 4))):
                hour = 8 + (5 + rng.random() * 50) / 60 if rng.random() < 0.5 else 20 + (5 + rng.random() * 50) / 60
                d = g.day(_OUTBOUND_WEEKDAY)
                t = g.local(d, c.home_zone, hour)
                if not outside_calling_hours(t, c.zones, 8, 21):
                    ev.append(_event(c, t, "sms", "outbound"))
        elif r < 0.10:  # revocation honoured: contacts stop within 3 days
            c.variant = "revocation_honoured"
            when = g.visit_time(c, g.day(_VISIT_WEEKDAY, 10, g.days - 5))
            ev = _drop_outbound_between(ev, when + dt.timedelta(days=3), None)
            _revoke(ev, when, "consent_revoked_ts" if rng.random() < 0.6 else "dnc_requested_ts")
        elif r < 0.11:  # one harsh but unrelated complaint (the sentiment threshold flags it)
            c.variant = "harsh_unrelated_complaint"
            created = g.visit_time(c, g.day(_VISIT_WEEKDAY, 0, g.days - 20))
            closed = created + dt.timedelta(days=float(rng.uniform(2, 15)))
            complaints.append(_complaint(c, created, "closed", closed, "Fees or interest", HARSH_UNRELATED_TEXT))
        if rng.random() < 0.09:  # ordinary complaints, mostly closed
            for _ in range(1 if rng.random() < 0.85 else 2):
                created = g.visit_time(c, g.day(_VISIT_WEEKDAY))
                tcpa = rng.random() < 0.15
                status = "closed" if rng.random() < 0.8 else ("pending" if rng.random() < 0.5 else "open")
                if tcpa:
                    status = "closed"
                closed = created + dt.timedelta(days=float(rng.uniform(1, 3) if tcpa else rng.uniform(1, 40)))
                text = str(rng.choice(NEUTRAL_TEXTS))
                reason = str(rng.choice(TCPA_REASONS if tcpa else OTHER_REASONS))
                if tcpa:  # compliant: no calls or texts while it was open
                    ev = _drop_outbound_between(ev, created, closed)
                    text = "I would like fewer reminder messages about my account."
                complaints.append(_complaint(c, created, status, closed if status == "closed" else None, reason, text))

    elif c.kind == "over_calling":
        if rng.random() < 0.7:
            c.variant = "burst"
            first = g.day(_OUTBOUND_WEEKDAY, 0, g.days - 7)
            span = int(rng.integers(2, 7))
            for _ in range(int(rng.integers(8, 15))):
                d = first + dt.timedelta(days=int(rng.integers(0, span)))
                outcome = "no_answer" if rng.random() < 0.6 else "voicemail"
                ev.append(_event(c, g.contact_time(c, d), "call", "outbound", 0, outcome))
        else:
            c.variant = "after_conversation"
            d = g.day(_OUTBOUND_WEEKDAY, 0, g.days - 8)
            t = g.contact_time(c, d)
            ev.append(_event(c, t, "call", "outbound", 0, "connected"))
            for _ in range(int(rng.integers(2, 5))):
                d2 = d + dt.timedelta(days=int(rng.integers(1, 6)))
                ev.append(_event(c, g.contact_time(c, d2), "call", "outbound", 0, "voicemail"))

    elif c.kind == "night_calls":
        c.variant = "night"
        for _ in range(int(rng.integers(2, 7))):
            late = rng.random() < 0.6
            hour = 21 + (10 + rng.random() * 140) / 60 if late else 6 + rng.random() * 1.75
            t = g.local(g.day(_OUTBOUND_WEEKDAY), c.home_zone, hour)
            name = "call" if rng.random() < 0.6 else "sms"
            ev.append(_event(c, t, name, "outbound", 0, "no_answer" if name == "call" else None))

    elif c.kind == "after_revocation":
        c.variant = "consent_revoked" if rng.random() < 0.6 else "dnc_requested"
        when = g.visit_time(c, g.day(_VISIT_WEEKDAY, 5, g.days - 30))
        ev = _drop_outbound_between(ev, when + dt.timedelta(days=3), None)
        if rng.random() < 0.3:
            ev.append(_event(c, when, "opt_out", "inbound"))
        for _ in range(int(rng.integers(3, 9))):
            lo = (when.date() - g.start).days + 15
            d = g.day(_OUTBOUND_WEEKDAY, lo, g.days)
            name = "call" if rng.random() < 0.6 else "sms"
            ev.append(_event(c, g.contact_time(c, d), name, "outbound", 0, "no_answer" if name == "call" else None))
        _revoke(ev, when, "consent_revoked_ts" if c.variant == "consent_revoked" else "dnc_requested_ts")

    elif c.kind == "complaint_storm":
        c.variant = "storm"
        start = int(rng.integers(5, g.days - 35))
        span = int(rng.integers(10, 30))
        n = int(rng.integers(4, 9))
        created_list = sorted(day0 + dt.timedelta(days=start + float(rng.uniform(0, span))) for _ in range(n))
        for i, created in enumerate(created_list):
            open_ = i >= n // 3  # the later ones are still open or pending
            status = ("open" if rng.random() < 0.6 else "pending") if open_ else "closed"
            closed = created + dt.timedelta(days=float(rng.uniform(5, 20))) if status == "closed" else None
            text = str(rng.choice(NEGATIVE_TEXTS))
            complaints.append(_complaint(c, created, status, closed, str(rng.choice(TCPA_REASONS)), text))
        first_open = next(x["complaint_create_date"] for x in complaints if x["complaint_status"] != "closed")
        lo = (first_open.date() - g.start).days + 1
        for _ in range(int(rng.integers(2, 6))):
            d = g.day(_OUTBOUND_WEEKDAY, lo, g.days)
            name = "call" if rng.random() < 0.6 else "sms"
            ev.append(_event(c, g.contact_time(c, d), name, "outbound", 0, "no_answer" if name == "call" else None))
        for _ in range(int(rng.integers(2, 6))):  # the customer calls in, upset
            t = g.visit_time(c, g.day(_OUTBOUND_WEEKDAY, lo - 1, g.days))
            ev.append(_event(c, t, "call", "inbound", 0, "no_answer"))
    if c.kind in ("night_calls", "after_revocation", "complaint_storm"):
        _keep_kind_pure(ev, [e for e in ev if id(e) not in base_ids])
    del base
    return ev, complaints


def generate(
    n_customers: int = 2000,
    seed: int = 0,
    as_of: dt.date | str = dt.date(2026, 11, 20),
    days: int = 90,
    problem_rate: float = 0.10,
) -> ComplianceData:
    """Journeys, complaints, accounts and labels of `n_customers` customers over `days` days ending at as_of.

    `problem_rate` of the customers (at least one of each kind) get one problem kind, in equal shares.
    """
    if n_customers < len(PROBLEM_KINDS) + 1:
        raise ValueError(f"need at least {len(PROBLEM_KINDS) + 1} customers, got {n_customers}")
    if not 0 <= problem_rate < 1:
        raise ValueError(f"problem_rate must be in [0, 1), got {problem_rate}")
    as_of = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    rng = np.random.default_rng(seed)
    g = _Gen(rng, as_of - dt.timedelta(days=days - 1), days)
    per_kind = max(1, int(round(n_customers * problem_rate / len(PROBLEM_KINDS))))
    kinds = [k for k in PROBLEM_KINDS for _ in range(per_kind)]
    kinds += [NORMAL] * (n_customers - len(kinds))
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]

    events: List[dict] = []
    complaints: List[dict] = []
    accounts: List[dict] = []
    labels: List[dict] = []
    for idx, kind in enumerate(kinds):
        c = _make_customer(g, idx, kind)
        ev, comp = _customer_events(g, c)
        events.extend(ev)
        complaints.extend(comp)
        if rng.random() < 0.97:  # a few customers have no account row (tenure unknown)
            opened = as_of - dt.timedelta(days=int(rng.integers(30, 15 * 365)))
            accounts.append({"temp_key": c.key, "account_open_date": opened.isoformat()})
        labels.append({"temp_key": c.key, "kind": c.kind, "variant": c.variant, "segment": c.segment,
                       "zone_status": resolve_zones(c.phone, c.zip_code)[1]})

    # Local times near midnight can fall outside [start, as_of] in UTC: the data covers whole UTC days.
    lo = dt.datetime.combine(g.start, dt.time(), tzinfo=UTC)
    hi = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=UTC)
    events = [e for e in events if lo <= e["event_ts"] < hi]
    complaints = [x for x in complaints if x["complaint_create_date"] < hi]
    journey = pd.DataFrame(events).sort_values(["temp_key", "event_ts"], kind="stable").reset_index(drop=True)
    for col in ("event_ts", "consent_revoked_ts", "dnc_requested_ts"):
        journey[col] = _fmt(journey[col])
    comp_df = pd.DataFrame(
        complaints,
        columns=["temp_key", "complaint_create_date", "case_edit_date", "complaint_status",
                 "contact_reason_primary_1", "complaint_description", "postal_code"],
    )
    for col in ("complaint_create_date", "case_edit_date"):
        comp_df[col] = _fmt(comp_df[col])
    log.info("generated %d customers, %d events, %d complaints", n_customers, len(journey), len(comp_df))
    return ComplianceData(journey, comp_df, pd.DataFrame(accounts), pd.DataFrame(labels), as_of)


def _fmt(values: pd.Series) -> pd.Series:
    """UTC 'YYYY-MM-DD HH:MM:SS' strings; None where missing."""
    ts = pd.to_datetime(values, utc=True)
    return ts.dt.strftime("%Y-%m-%d %H:%M:%S").where(ts.notna(), None)


def labelled_keys(labels: pd.DataFrame, kinds: Sequence[str] = PROBLEM_KINDS) -> Dict[str, List[str]]:
    return {k: labels.loc[labels["kind"] == k, "temp_key"].tolist() for k in kinds}
