"""Compliance rules at their boundaries: hand-built event sequences through the Spark rule code.

Pure reference functions (local calling hours, processing deadlines, rule availability) are tested
without Spark; the Spark rule evidence is computed once for a module-level table of hand-built
customers (one action) and each test reads its customer's events from it.
"""
import datetime as dt

import pytest

from advanced_anomaly_detection.compliance import rules as R
from advanced_anomaly_detection.config import Config, load_config

UTC = dt.timezone.utc
NY_PHONE = "212-555-0100"  # America/New_York
LA_PHONE = "213-555-0100"  # America/Los_Angeles


def utc(*args) -> dt.datetime:
    return dt.datetime(*args)  # naive = UTC (the test session's time zone)


# --- pure reference implementations -----------------------------------------------------------------


def test_outside_calling_hours_boundaries_and_dst():
    ny = ["America/New_York"]
    # November (EST, UTC-5): 8:59 p.m. local = 01:59 UTC next day; 9:01 p.m. = 02:01 UTC.
    assert not R.outside_calling_hours(dt.datetime(2026, 11, 11, 1, 59, tzinfo=UTC), ny)
    assert R.outside_calling_hours(dt.datetime(2026, 11, 11, 2, 1, tzinfo=UTC), ny)
    # Exactly 9:00:00 p.m. and 8:00:00 a.m. are allowed, one second outside is not.
    assert not R.outside_calling_hours(dt.datetime(2026, 11, 11, 2, 0, 0, tzinfo=UTC), ny)
    assert R.outside_calling_hours(dt.datetime(2026, 11, 11, 2, 0, 1, tzinfo=UTC), ny)
    assert not R.outside_calling_hours(dt.datetime(2026, 11, 10, 13, 0, 0, tzinfo=UTC), ny)
    assert R.outside_calling_hours(dt.datetime(2026, 11, 10, 12, 59, 59, tzinfo=UTC), ny)
    # Spring forward (2026-03-08): 01:30 UTC is 8:30 p.m. EST on Mar 7 but 9:30 p.m. EDT on Mar 8.
    assert not R.outside_calling_hours(dt.datetime(2026, 3, 8, 1, 30, tzinfo=UTC), ny)
    assert R.outside_calling_hours(dt.datetime(2026, 3, 9, 1, 30, tzinfo=UTC), ny)
    # Unknown zone: both coasts; 12:00 UTC in March is 8 a.m. EDT but 5 a.m. PDT.
    both = ["America/New_York", "America/Los_Angeles"]
    assert R.outside_calling_hours(dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC), both)
    assert not R.outside_calling_hours(dt.datetime(2026, 3, 10, 19, 0, tzinfo=UTC), both)


def test_processing_deadline_business_days_and_holidays():
    hol = R.holiday_dates("US", 2026, 2026)
    assert dt.date(2026, 11, 11) in hol  # Veterans Day
    # Revoked Friday 2026-11-06: 10 business days, skipping weekends and Veterans Day -> Mon 11-23.
    assert R.processing_deadline(dt.date(2026, 11, 6), 10, True, hol) == dt.date(2026, 11, 23)
    assert R.processing_deadline(dt.date(2026, 11, 6), 10, True, ()) == dt.date(2026, 11, 20)
    assert R.processing_deadline(dt.date(2026, 11, 6), 10, False) == dt.date(2026, 11, 16)
    assert R.processing_deadline(dt.date(2026, 11, 6), 0) == dt.date(2026, 11, 6)


def test_rule_availability_names_missing_columns_and_config():
    cc = load_config(None, ["compliance.rules.quiet_hours.enabled=false"]).compliance
    avail = R.rule_availability(cc, ["temp_key", "event_ts"], ["temp_key", "complaint_description"])
    assert avail["REGF_CALL_FREQUENCY"] == ""
    assert "call_outcome" in avail["REGF_CALL_AFTER_CONVERSATION"]
    assert "consent_revoked_ts or dnc_requested_ts" in avail["TCPA_AFTER_REVOCATION"]
    assert "disabled in config" in avail["TCPA_QUIET_HOURS"]
    assert avail["TCPA_OPEN_COMPLAINT_CONTACT"] == ""  # the description alone is enough
    assert avail["NEGATIVE_COMPLAINT_SENTIMENT"] == ""
    every = R.rule_availability(Config().compliance, ["call_outcome", "dnc_requested_ts"], [])
    assert "complaint_description" in every["NEGATIVE_COMPLAINT_SENTIMENT"]


def test_every_rule_has_a_citation_and_unique_code():
    codes = [r.code for r in R.RULES]
    assert len(set(codes)) == len(codes)
    for r in R.RULES:
        assert r.regulation and r.description
        if r.kind == R.REGULATORY:
            assert "CFR" in r.regulation


def test_tier_for():
    cc = Config().compliance
    assert R.tier_for({}, 0, False, cc) == "low"
    assert R.tier_for({}, 1, False, cc) == "medium"
    assert R.tier_for({}, 0, True, cc) == "medium"
    assert R.tier_for({"TCPA_QUIET_HOURS": 1}, 0, False, cc) == "high"
    assert R.tier_for({"TCPA_QUIET_HOURS": 5}, 0, False, cc) == "critical"
    assert R.tier_for({"TCPA_QUIET_HOURS": 1, "REGF_CALL_FREQUENCY": 1}, 0, False, cc) == "critical"


# --- Spark: per-event rule evidence on hand-built sequences -----------------------------------------

# (temp_key, event_ts, event_nm, direction, call_outcome, phone, postal, consent_revoked_ts, dnc_requested_ts)
def _events():
    rows = []

    def add(key, ts, name="call", direction="outbound", outcome="no_answer", phone=NY_PHONE, postal="10001",
            revoked=None, dnc=None):
        rows.append((key, ts, name, direction, 0, outcome, phone, postal, revoked, dnc))

    day0 = utc(2026, 10, 5, 15, 0)  # a Monday, 11 a.m. EDT
    # Regulation F frequency: 7 calls in 6 days (allowed) vs 8 calls in 6 days 23 h (8th breaks the rule).
    for i in range(7):
        add("F7", day0 + dt.timedelta(hours=i * 23))
    for i in range(8):
        add("F8", day0 + dt.timedelta(minutes=i * 1439 * 7 // 8))
    # 8 calls spanning exactly 7 x 24 h: never 8 within less than 7 days.
    for i in range(8):
        add("F8WIDE", day0 + dt.timedelta(days=i))
    # 7 calls and a text in one day: texts are not telephone calls under Regulation F.
    for i in range(7):
        add("F7SMS", day0 + dt.timedelta(hours=i))
    add("F7SMS", day0 + dt.timedelta(hours=8), name="sms", outcome=None)
    # Call after a conversation: 6 d 23 h later (breaks) vs 7 d + 1 s later (allowed).
    add("CONV", day0, outcome="connected")
    add("CONV", day0 + dt.timedelta(days=6, hours=23))
    add("CONV", day0 + dt.timedelta(days=14))  # 7 d 1 h after the previous call (not a conversation)
    add("CONV2", day0, outcome="connected")
    add("CONV2", day0 + dt.timedelta(days=7, seconds=1))
    add("CONVIN", day0, direction="inbound", outcome="connected")  # the customer called in
    add("CONVIN", day0 + dt.timedelta(days=1))
    # Quiet hours, New York, November (EST): 8:59 p.m. vs 9:01 p.m. local.
    add("QH", utc(2026, 11, 11, 1, 59))
    add("QH", utc(2026, 11, 11, 2, 1))
    add("QH", utc(2026, 11, 11, 2, 5), direction="inbound")  # inbound calls are not contacts
    add("QH", utc(2026, 11, 11, 2, 6), name="email", outcome=None)  # e-mail is not a call or text
    # Across the spring-forward change (2026-03-08): same UTC clock time, different local hour.
    add("DST", utc(2026, 3, 8, 1, 30))  # 8:30 p.m. EST, Mar 7
    add("DST", utc(2026, 3, 9, 1, 30))  # 9:30 p.m. EDT, Mar 8
    # ... and the fall-back change (2026-11-01).
    add("DST", utc(2026, 10, 31, 1, 30))  # 9:30 p.m. EDT, Oct 30
    add("DST", utc(2026, 11, 2, 1, 30))  # 8:30 p.m. EST, Nov 1
    # Unknown zone (no phone, masked ZIP): both coasts checked.
    add("TZUNK", utc(2026, 3, 10, 12, 0), phone=None, postal="XXXXX")  # 8 a.m. EDT, 5 a.m. PDT
    add("TZUNK", utc(2026, 3, 10, 19, 0), phone=None, postal="XXXXX")  # 3 p.m. EDT, noon PDT
    # Phone in New York, ZIP in Los Angeles: a call must be allowed in both zones.
    add("TZAMB", utc(2026, 11, 10, 14, 0), postal="90012")  # 9 a.m. EST, 6 a.m. PST
    add("TZAMB", utc(2026, 11, 10, 20, 0), postal="90012")  # 3 p.m. EST, noon PST
    # Revocation on Fri 2026-11-06: 10 business days (Veterans Day skipped) -> last allowed day 11-23.
    revoked = utc(2026, 11, 6, 15, 0)
    add("REV", utc(2026, 11, 2, 15, 0))
    add("REV", utc(2026, 11, 23, 15, 0), revoked=revoked)
    add("REV", utc(2026, 11, 24, 15, 0), revoked=revoked, name="sms", outcome=None)
    # A "STOP" reply (opt-out event), then a text 20 days later.
    add("OPTOUT", utc(2026, 9, 1, 15, 0), name="opt_out", direction="inbound", outcome=None)
    add("OPTOUT", utc(2026, 9, 21, 15, 0), name="sms", outcome=None)
    return rows


@pytest.fixture(scope="module")
def evidence(spark):
    from pyspark.sql import types as T

    from advanced_anomaly_detection.spark import compliance_job as J

    schema = T.StructType(
        [
            T.StructField("temp_key", T.StringType()),
            T.StructField("event_ts", T.TimestampType()),
            T.StructField("event_nm", T.StringType()),
            T.StructField("direction", T.StringType()),
            T.StructField("visit_count", T.LongType()),
            T.StructField("call_outcome", T.StringType()),
            T.StructField("phone_number", T.StringType()),
            T.StructField("postal_code", T.StringType()),
            T.StructField("consent_revoked_ts", T.TimestampType()),
            T.StructField("dnc_requested_ts", T.TimestampType()),
        ]
    )
    cc = Config().compliance
    ev = J.prepare_events(spark.createDataFrame(_events(), schema), cc)
    ev = J.resolve_event_zones(ev, cc)
    active = {r.code: "" for r in R.RULES}
    out = J.event_rule_evidence(ev, cc, active, R.holiday_dates("US", 2025, 2027))
    rows = out.select(
        "temp_key", "event_ts", "event_nm", "direction", "zones", "zone_status", "n_window_all",
        "ev_regf_call_frequency", "ev_regf_call_after_conversation", "ev_tcpa_quiet_hours",
        "ev_tcpa_after_revocation", "revocation_ts",
    ).collect()
    by_key = {}
    for r in sorted(rows, key=lambda r: (r["temp_key"], r["event_ts"])):
        by_key.setdefault(r["temp_key"], []).append(r)
    return by_key


def _flags(rows, name):
    return [bool(r[name]) for r in rows]


def test_frequency_7_calls_allowed_8th_call_flagged(evidence):
    assert _flags(evidence["F7"], "ev_regf_call_frequency") == [False] * 7
    assert _flags(evidence["F8"], "ev_regf_call_frequency") == [False] * 7 + [True]
    assert _flags(evidence["F8WIDE"], "ev_regf_call_frequency") == [False] * 8
    assert not any(_flags(evidence["F7SMS"], "ev_regf_call_frequency"))


def test_call_within_7_days_after_conversation(evidence):
    assert _flags(evidence["CONV"], "ev_regf_call_after_conversation") == [False, True, False]
    assert _flags(evidence["CONV2"], "ev_regf_call_after_conversation") == [False, False]
    # A conversation on an inbound call counts too.
    assert _flags(evidence["CONVIN"], "ev_regf_call_after_conversation") == [False, True]


def test_quiet_hours_859pm_allowed_901pm_flagged(evidence):
    qh = evidence["QH"]
    assert qh[0]["zones"] == ["America/New_York"] and qh[0]["zone_status"] == "exact"
    assert _flags(qh, "ev_tcpa_quiet_hours") == [False, True, False, False]


def test_quiet_hours_across_daylight_saving_changes(evidence):
    # Sorted by time: 2026-03-08 01:30, 2026-03-09 01:30, 2026-10-31 01:30, 2026-11-02 01:30 (UTC).
    assert _flags(evidence["DST"], "ev_tcpa_quiet_hours") == [False, True, True, False]


def test_quiet_hours_unknown_and_ambiguous_zone(evidence):
    unk = evidence["TZUNK"]
    assert unk[0]["zone_status"] == "unknown"
    assert sorted(unk[0]["zones"]) == ["America/Los_Angeles", "America/New_York"]
    assert _flags(unk, "ev_tcpa_quiet_hours") == [True, False]
    amb = evidence["TZAMB"]
    assert amb[0]["zone_status"] == "ambiguous"
    assert _flags(amb, "ev_tcpa_quiet_hours") == [True, False]


def test_contact_after_revocation_beyond_processing_days(evidence):
    rev = evidence["REV"]
    assert rev[1]["revocation_ts"] == utc(2026, 11, 6, 15, 0)
    # Before the revocation, on the last allowed business day, the day after.
    assert _flags(rev, "ev_tcpa_after_revocation") == [False, False, True]
    assert _flags(evidence["OPTOUT"], "ev_tcpa_after_revocation") == [False, True]


def test_spark_deadline_matches_reference(spark):
    from pyspark.sql import functions as F

    from advanced_anomaly_detection.spark.compliance_job import _deadline

    cc = Config().compliance
    hol = R.holiday_dates("US", 2025, 2027)
    dates = [dt.date(2026, 11, 6) + dt.timedelta(days=i) for i in range(0, 60, 3)]
    df = spark.createDataFrame([(d,) for d in dates], "d date")
    got = {r["d"]: r["dl"] for r in df.select("d", _deadline(F.col("d"), cc.rules.revocation, hol).alias("dl")).collect()}
    for d in dates:
        assert got[d] == R.processing_deadline(d, 10, True, hol), d


def test_open_complaint_contacts_range_join(spark):
    from advanced_anomaly_detection.spark import compliance_job as J

    cc = Config().compliance
    ev = spark.createDataFrame(
        [
            ("A", utc(2026, 11, 1, 15), True, True, "call"),  # before the complaint
            ("A", utc(2026, 11, 3, 15), True, True, "call"),  # while open
            ("A", utc(2026, 11, 9, 15), True, True, "sms"),  # after it was closed
            ("B", utc(2026, 11, 3, 15), True, True, "call"),  # B's complaint is not about calls
            ("C", utc(2026, 11, 20, 15), True, True, "sms"),  # still open (pending)
            ("C", utc(2026, 11, 21, 15), False, True, "email"),  # e-mail does not count by default
        ],
        "temp_key string, event_ts timestamp, is_contact boolean, is_outbound boolean, event_nm string",
    )
    complaints = spark.createDataFrame(
        [
            ("A", utc(2026, 11, 2), utc(2026, 11, 8), "closed", "Communication tactics", None),
            ("B", utc(2026, 11, 2), None, "open", "Billing dispute", "Statement was wrong."),
            ("C", utc(2026, 11, 10), None, "pending", None, "They keep calling me at work."),
        ],
        "temp_key string, complaint_create_date timestamp, case_edit_date timestamp, complaint_status string, "
        "contact_reason_primary_1 string, complaint_description string",
    )
    got = {r["temp_key"]: r for r in J.open_complaint_contacts(ev, complaints, cc).collect()}
    assert set(got) == {"A", "C"}
    assert got["A"]["oc_count"] == 1 and got["A"]["oc_first"] == utc(2026, 11, 3, 15)
    assert got["C"]["oc_count"] == 1
