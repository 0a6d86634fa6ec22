"""Customer features against hand-computed values, complaint sentiment on real CFPB narratives, the model
applied through Spark, and the pure parts (time-zone lookup, CFPB adapter, model, generator, evaluation).
"""
import datetime as dt
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advanced_anomaly_detection.compliance import rules as R
from advanced_anomaly_detection.compliance.sentiment import clean_text, polarity, polarity_series
from advanced_anomaly_detection.config import Config

CFPB = Path(__file__).resolve().parents[2] / "shared" / "data" / "cfpb_complaints_sample_1k.csv"
if not CFPB.exists():  # a checkout beside the shared folder, or the repo inside it
    CFPB = Path("/work/shared/data/cfpb_complaints_sample_1k.csv")

NEUTRAL = "I requested a copy of my statement for last month and have not received it yet."
NEGATIVE = "The collector calls me late at night and early in the morning. Terrible, abusive behavior."
AS_OF = dt.date(2026, 11, 20)


def utc(*args):
    return dt.datetime(*args)


# --- features through the Spark code, against hand-computed values ------------------------------------


@pytest.fixture(scope="module")
def features(spark):
    from pyspark.sql import functions as F

    from advanced_anomaly_detection.spark import compliance_job as J

    cc = Config().compliance
    jrows = [
        # A: 6 events; the densest 7-day window (11-01 15:00 .. 11-08 14:00) holds 4.
        ("A", utc(2026, 11, 1, 15), "web_visit", "inbound", 3, "10001"),
        ("A", utc(2026, 11, 2, 15), "call", "outbound", 0, "10001"),
        ("A", utc(2026, 11, 3, 15), "call", "outbound", 0, "10001"),
        ("A", utc(2026, 11, 8, 14), "email", "outbound", 0, "10001"),
        ("A", utc(2026, 11, 9, 16), "web_visit", "inbound", 2, "10001"),
        ("A", utc(2026, 11, 15, 15), "web_visit", "inbound", 1, "10001"),
        # B: one text, 80 days before the as-of date (not active).
        ("B", utc(2026, 9, 1, 15), "sms", "outbound", None, "10001"),
    ]
    journey = spark.createDataFrame(
        jrows, "temp_key string, event_ts timestamp, event_nm string, direction string, visit_count long, postal_code string"
    )
    for col, typ in (("call_outcome", "string"), ("phone_number", "string"), ("consent_revoked_ts", "timestamp"),
                     ("dnc_requested_ts", "timestamp")):
        journey = journey.withColumn(col, F.lit(None).cast(typ))
    crows = [
        ("A", utc(2026, 10, 1), utc(2026, 10, 11), "closed", "Billing dispute", NEUTRAL, "10001"),
        ("A", utc(2026, 10, 20), None, "open", "Communication tactics", NEGATIVE, "10001"),
        ("A", utc(2026, 11, 10), None, "pending", "billing dispute", None, "10001"),
        ("C", utc(2026, 11, 5), utc(2026, 11, 7, 12), "closed", "Fees or interest", NEUTRAL, "60601"),
    ]
    complaints = spark.createDataFrame(
        crows,
        "temp_key string, complaint_create_date timestamp, case_edit_date timestamp, complaint_status string, "
        "contact_reason_primary_1 string, complaint_description string, postal_code string",
    )
    accounts = spark.createDataFrame(
        [("A", dt.date(2020, 11, 20)), ("C", dt.date(2026, 1, 1)), ("C", dt.date(2026, 6, 1))],
        "temp_key string, account_open_date date",
    )
    active = {r.code: "" for r in R.RULES}
    ev = J.event_rule_evidence(J.resolve_event_zones(J.prepare_events(journey, cc), cc), cc, active, ())
    as_of_end = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time())
    cust = J.customer_table(
        J.event_features(ev, as_of_end, cc),
        J.complaint_features(complaints, cc, with_text=True),
        J.open_complaint_contacts(ev, complaints, cc),
        accounts,
        AS_OF,
        cc,
    )
    cust = J.apply_rules(cust, cc, active)
    return {r["temp_key"]: r.asDict() for r in cust.collect()}


def test_event_features_hand_computed(features):
    a, b, c = features["A"], features["B"], features["C"]
    assert a["total_interactions"] == 6 and b["total_interactions"] == 1 and c["total_interactions"] == 0
    assert a["unique_event_types"] == 3
    assert a["max_7day_interactions"] == 4  # time-based window, not 7 rows
    assert a["total_visits"] == 6 and b["total_visits"] == 0
    assert a["event_type_concentration"] == pytest.approx(3 / 6)
    assert b["event_type_concentration"] == 1.0 and c["event_type_concentration"] == 0.0
    assert a["is_active"] is True and b["is_active"] is False and c["is_active"] is False
    assert a["outbound_calls"] == 2 and b["outbound_texts"] == 1


def test_complaint_features_hand_computed(features):
    a, b, c = features["A"], features["B"], features["C"]
    assert (a["complaints_open"], a["complaints_pending"], a["complaints_closed"]) == (1, 1, 1)
    assert a["complaints_total"] == 3 and b["complaints_total"] == 0
    assert a["complaint_reason_diversity"] == 2  # reasons compared case-insensitively
    assert a["complaint_to_visit_ratio"] == pytest.approx(3 / 6)
    assert c["complaint_to_visit_ratio"] == pytest.approx(1 / 1)  # no visits: divided by 1
    assert a["avg_resolution_days"] == pytest.approx(10.0)
    assert c["avg_resolution_days"] == pytest.approx(2.5)
    assert a["repeat_complaints"] == 2  # 19 and 21 days after the previous one (<= 30)
    assert a["resolved_to_open_ratio"] == pytest.approx(1 / 2)
    assert c["resolved_to_open_ratio"] == pytest.approx(1.0)
    # Mean polarity of the two texts (the third complaint has none).
    assert a["avg_complaint_sentiment"] == pytest.approx((polarity(NEUTRAL) + polarity(NEGATIVE)) / 2)
    assert b["avg_complaint_sentiment"] is None


def test_postal_tenure_and_rule_features(features):
    a, b, c = features["A"], features["B"], features["C"]
    assert a["postal_code"] == "10001" and c["postal_code"] == "60601"  # C: from its complaint
    assert a["postal_complaint_density"] == pytest.approx(3 / 2)  # 3 complaints, 2 customers in 10001
    assert c["postal_complaint_density"] == pytest.approx(1.0)
    assert a["high_interaction_postal"] is True and c["high_interaction_postal"] is False
    assert a["tenure_days"] == (AS_OF - dt.date(2020, 11, 20)).days
    assert c["tenure_days"] == (AS_OF - dt.date(2026, 1, 1)).days  # the oldest account
    assert b["tenure_days"] is None
    # A's open TCPA complaint (10-20, "Communication tactics") saw two calls and an e-mail: calls count.
    assert a["rule_tcpa_open_complaint_contact"] is True and a["oc_count"] == 2
    assert a["rule_negative_complaint_sentiment"] is False  # mean polarity -0.2 > -0.4
    assert b["rule_tcpa_open_complaint_contact"] is False
    assert [r["code"] for r in a["_rule_reasons"]] == ["TCPA_OPEN_COMPLAINT_CONTACT"]
    assert a["rule_score"] == pytest.approx(0.9)


# --- sentiment on real CFPB narratives --------------------------------------------------------------


def test_sentiment_udf_on_real_cfpb_narratives(spark):
    from advanced_anomaly_detection.compliance.cfpb import read_cfpb
    from advanced_anomaly_detection.spark import compliance_job as J

    real = read_cfpb(CFPB)
    sample = real[real["complaint_description"].notna()].head(25).copy()
    sample = pd.concat([sample, real[real["complaint_description"].isna()].head(2)])
    sample["complaint_create_date"] = pd.to_datetime(sample["complaint_create_date"])
    sample["case_edit_date"] = pd.NaT
    df = spark.createDataFrame(
        sample[["temp_key", "complaint_create_date", "case_edit_date", "complaint_status", "contact_reason_primary_1",
                "complaint_description", "postal_code"]].astype(object).where(sample.notna(), None),
        "temp_key string, complaint_create_date timestamp, case_edit_date timestamp, complaint_status string, "
        "contact_reason_primary_1 string, complaint_description string, postal_code string",
    )
    out = J.complaint_features(df, Config().compliance, with_text=True)
    assert "complaint_description" not in out.columns
    got = {r["temp_key"]: r["avg_complaint_sentiment"] for r in out.collect()}
    expected = polarity_series(sample["complaint_description"])
    for key, want in zip(sample["temp_key"], expected):
        if math.isnan(want):
            assert got[key] is None
        else:
            assert got[key] == pytest.approx(want, abs=1e-12)
    values = [v for v in got.values() if v is not None]
    assert len(values) == 25 and all(-1 <= v <= 1 for v in values)
    assert min(values) < 0 < max(values)  # real text: both signs


def test_clean_text_removes_cfpb_masks():
    text = "On XX/XX/XXXX I paid {$250.00} to XXXX XXXX and it is bad."
    assert clean_text(text) == "On I paid to and it is bad."
    assert math.isnan(polarity("XXXX XXXX")) and math.isnan(polarity(None)) and math.isnan(polarity(""))
    assert polarity("This is terrible and awful.") < -0.5


# --- CFPB adapter -------------------------------------------------------------------------------------


def test_cfpb_adapter_maps_real_export():
    from advanced_anomaly_detection.compliance.cfpb import read_cfpb

    raw = pd.read_csv(CFPB, dtype=str, keep_default_na=False)
    out = read_cfpb(CFPB)
    assert len(out) == len(raw) == 1000
    assert list(out.columns[:7]) == ["temp_key", "complaint_create_date", "case_edit_date", "complaint_status",
                                     "contact_reason_primary_1", "complaint_description", "postal_code"]
    assert out["temp_key"].is_unique
    assert set(out["complaint_status"]) <= {"open", "pending", "closed"}
    in_progress = raw["Company response to consumer"] == "In progress"
    assert (out.loc[in_progress.to_numpy(), "complaint_status"] == "pending").all()
    assert out["postal_code"].str.len().eq(5).all()  # leading zeros and "275XX" kept as text
    assert out["postal_code"].str.endswith("XX").sum() > 10
    row = raw.iloc[0]
    assert out.loc[0, "contact_reason_primary_1"] == f"{row['Issue']} / {row['Sub-issue']}"
    assert out["complaint_description"].isna().sum() == (raw["Consumer complaint narrative"] == "").sum()
    assert out["case_edit_date"].isna().all()


def test_cfpb_adapter_rejects_other_csv(tmp_path):
    from advanced_anomaly_detection.compliance.cfpb import read_cfpb
    from advanced_anomaly_detection.errors import InputValidationError

    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(InputValidationError, match="missing column"):
        read_cfpb(p)


# --- time zones ---------------------------------------------------------------------------------------


def test_zone_lookup_offline():
    from advanced_anomaly_detection.compliance import timezones as tz

    assert tz.zones_for_phone("(919) 555-0142") == ("America/New_York",)
    assert tz.zones_for_phone("+1 602 555 0100") == ("America/Phoenix",)
    assert tz.zones_for_phone("800-555-0100") == ()  # toll-free: nowhere in particular
    assert tz.zones_for_phone("12") == () and tz.zones_for_phone(None) == ()
    assert tz.zones_for_postal("27514") == ("America/New_York",)
    assert tz.zones_for_postal("90012-1234") == ("America/Los_Angeles",)
    assert tz.zones_for_postal("48201") == ("America/New_York",)  # Detroit merged with New York
    assert tz.zones_for_postal("275XX") == ("America/New_York",)  # partial ZIP: 3-digit prefix
    assert tz.zones_for_postal("2108") == ("America/New_York",)  # lost leading zero
    assert tz.zones_for_postal("XXXXX") == () and tz.zones_for_postal("SW1A 1AA") == ()
    zones, status = tz.resolve_zones(None, "XXXXX")
    assert status == "unknown" and set(zones) == {"America/New_York", "America/Los_Angeles"}
    assert tz.resolve_zones("212-555-0100", "90012")[1] == "ambiguous"
    assert tz.resolve_zones("212-555-0100", "90012", source="phone_first") == (("America/New_York",), "exact")


def test_generator_locations_resolve_to_their_zone():
    from advanced_anomaly_detection.compliance.generator import LOCATIONS
    from advanced_anomaly_detection.compliance.timezones import canonical_zone, resolve_zones

    for zip_code, area, zone, _ in LOCATIONS:
        assert resolve_zones(f"{area}-555-0100", zip_code)[0][-1] == canonical_zone(zone) or \
            canonical_zone(zone) in resolve_zones(f"{area}-555-0100", zip_code)[0], (zip_code, area)
        assert resolve_zones(None, zip_code) == ((canonical_zone(zone),), "exact"), zip_code


# --- model ------------------------------------------------------------------------------------------


def _feature_frame(n=600, outliers=12, seed=0):
    from advanced_anomaly_detection.compliance.schema import MODEL_FEATURES

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f: rng.poisson(3, n).astype(float) for f in MODEL_FEATURES})
    df["avg_complaint_sentiment"] = np.where(rng.random(n) < 0.2, rng.normal(0, 0.1, n), np.nan)
    df["event_type_concentration"] = rng.uniform(0.2, 0.6, n)
    df["is_active"] = rng.random(n) < 0.7
    df["high_interaction_postal"] = rng.random(n) < 0.1
    df["tenure_days"] = np.nan  # no accounts table: dropped by the model
    df.loc[: outliers - 1, ["max_7day_interactions", "complaints_open", "repeat_complaints"]] = 40.0
    df.loc[: outliers - 1, "avg_complaint_sentiment"] = -0.8
    return df


def test_model_contract_and_planted_outliers():
    from sklearn.metrics import roc_auc_score

    from advanced_anomaly_detection.compliance.model import CustomerIsolationForest

    df = _feature_frame()
    m = CustomerIsolationForest(n_estimators=100, random_state=1).fit(df)
    assert "tenure_days" in m.dropped_features_
    s = m.score(df)
    assert s.shape == (len(df),) and np.all((s >= 0) & (s <= 1))
    labels = np.r_[np.ones(12), np.zeros(len(df) - 12)]
    assert roc_auc_score(labels, s) > 0.95
    assert np.median(s[:12]) > 0.99
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_allclose(m2.score(df), s)
    assert "n_estimators=100" in repr(m)
    with pytest.raises(RuntimeError):
        CustomerIsolationForest().score(df)


def test_model_applied_through_spark_matches_local(spark):
    from advanced_anomaly_detection.compliance.model import CustomerIsolationForest
    from advanced_anomaly_detection.spark.compliance_job import score_model

    df = _feature_frame(n=300, outliers=6, seed=2)
    m = CustomerIsolationForest(n_estimators=50, random_state=0).fit(df)
    pdf = df.assign(temp_key=[f"K{i}" for i in range(len(df))])
    sdf = spark.createDataFrame(pdf)  # NaN sentiment stays NaN; the model imputes it like a null
    got = {r["temp_key"]: r["model_score"] for r in score_model(spark, sdf, m).select("temp_key", "model_score").collect()}
    local = m.score(df)
    np.testing.assert_allclose([got[k] for k in pdf["temp_key"]], local, rtol=1e-9, atol=1e-12)


# --- generator and evaluation ---------------------------------------------------------------------------


def test_generator_is_deterministic_and_labelled():
    from advanced_anomaly_detection.compliance.generator import PROBLEM_KINDS, generate

    a = generate(120, seed=5)
    b = generate(120, seed=5)
    pd.testing.assert_frame_equal(a.journey, b.journey)
    pd.testing.assert_frame_equal(a.complaints, b.complaints)
    assert not a.journey.equals(generate(120, seed=6).journey)
    kinds = a.labels["kind"].value_counts()
    assert all(kinds.get(k, 0) >= 1 for k in PROBLEM_KINDS) and kinds["normal"] > 100
    assert a.labels["temp_key"].is_unique
    ts = pd.to_datetime(a.journey["event_ts"])
    assert ts.max() < pd.Timestamp(a.as_of + dt.timedelta(days=1))
    assert set(a.journey["direction"]) == {"inbound", "outbound"}
    assert {"call", "sms", "email", "web_visit"} <= set(a.journey["event_nm"])
    # Complaint texts: both negative and neutral wording.
    pol = polarity_series(a.complaints["complaint_description"])
    assert pol.min() < -0.4 and (pol.abs() < 0.05).any()


def test_evaluation_table():
    from advanced_anomaly_detection.compliance.evaluation import evaluate, format_table

    labels = pd.DataFrame({"temp_key": list("abcdef"),
                           "kind": ["over_calling", "night_calls", "normal", "normal", "complaint_storm", "normal"]})
    r = lambda code, n=1: [{"code": code, "count": n}]  # noqa: E731
    scored = pd.DataFrame(
        {
            "temp_key": list("abcdef"),
            "rule_score": [0.9, 0.9, 0.6, 0, 0, 0],
            "model_score": [0.5, 0.2, 0.1, 0.995, 0.999, 0.3],
            "model_flag": [False, False, False, True, True, False],
            "risk_score": [0.95, 0.92, 0.62, 0.5, 0.5, 0.15],
            "is_flagged": [True, True, True, True, True, False],
            "reasons": [r("REGF_CALL_FREQUENCY"), r("TCPA_QUIET_HOURS"), r("NEGATIVE_COMPLAINT_SENTIMENT"),
                        r("MODEL_ANOMALY"), r("MODEL_ANOMALY"), []],
        }
    )
    t = evaluate(scored, labels, top_k=[2, 3]).set_index("method")
    assert t.loc["rules", "precision"] == pytest.approx(2 / 3) and t.loc["rules", "recall"] == pytest.approx(2 / 3)
    assert t.loc["rules", "over_calling_precision"] == 1.0
    assert t.loc["rules", "complaint_storm_precision"] == 0.0  # the sentiment flag hit a normal customer
    assert t.loc["model", "precision"] == 0.5 and t.loc["model", "complaint_storm_recall"] == 1.0
    assert math.isnan(t.loc["model", "over_calling_precision"])
    assert t.loc["combined", "recall"] == 1.0 and t.loc["rules", "P@2"] == 1.0
    text = format_table(evaluate(scored, labels, top_k=[2]))
    assert "over_calling" in text and "P@2" in text
