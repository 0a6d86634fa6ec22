"""The compliance job end to end (generated data with labelled problem customers), bad input, CLI."""
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from advanced_anomaly_detection.compliance import rules as R
from advanced_anomaly_detection.compliance.evaluation import KIND_REASONS
from advanced_anomaly_detection.compliance.generator import PROBLEM_KINDS, generate
from advanced_anomaly_detection.compliance.schema import FEATURES
from advanced_anomaly_detection.config import Config, load_config
from advanced_anomaly_detection.errors import InputValidationError

N_CUSTOMERS = 300


@pytest.fixture(scope="module")
def e2e(spark, tmp_path_factory):
    from advanced_anomaly_detection.spark.compliance_job import run

    root = tmp_path_factory.mktemp("compliance_e2e")
    data = generate(N_CUSTOMERS, seed=11)
    paths = data.write(root / "in")
    output = str(root / "gold_compliance_risk")
    summary = run(spark, Config(), paths["journey"], paths["complaints"], paths["accounts"], output, data.as_of)
    out = pd.read_parquet(output)
    return {"data": data, "summary": summary, "out": out, "output": output, "root": root}


def test_job_writes_one_row_per_customer_with_schema(e2e):
    out, summary, data = e2e["out"], e2e["summary"], e2e["data"]
    assert summary["status"] == "ok" and summary["customers_scored"] == len(out)
    assert out["temp_key"].is_unique
    with_input = set(data.journey["temp_key"]) | set(data.complaints["temp_key"]) | set(data.accounts["temp_key"])
    assert set(out["temp_key"]) == with_input
    for col in ("temp_key", *FEATURES, *(r.flag_column for r in R.RULES), "reasons", "model_score", "is_flagged",
                "risk_tier", "as_of_date", "run_id"):
        assert col in out.columns, col
    assert out["model_score"].between(0, 1).all()
    assert set(out["risk_tier"]) <= set(R.RISK_TIERS)
    assert (pd.to_datetime(out["as_of_date"]).dt.date == data.as_of).all()
    assert (out["run_id"] == summary["run_id"]).all()
    assert summary["inputs"]["journey"]["rejected"] == {} and summary["rules_skipped"] == {}
    on_disk = json.loads(Path(e2e["output"] + "_summary.json").read_text())
    assert on_disk["run_id"] == summary["run_id"] and on_disk["customers_flagged"] == summary["customers_flagged"]


def test_labelled_problem_customers_found_with_their_reasons(e2e):
    out = e2e["out"].merge(e2e["data"].labels, on="temp_key")
    codes = out["reasons"].map(lambda rs: {r["code"] for r in rs})
    for kind in PROBLEM_KINDS:
        of_kind = out["kind"] == kind
        assert of_kind.sum() >= 5
        found = codes[of_kind].map(lambda c, k=kind: bool(c & set(KIND_REASONS[k])))
        assert found.all(), (kind, out.loc[of_kind & ~found, "temp_key"].tolist())
        assert out.loc[of_kind, "risk_tier"].isin(["high", "critical"]).all()
    normal = out["kind"] == "normal"
    regulatory = codes.map(lambda c: bool(c & set(R.REGULATORY_CODES)))
    assert not (normal & regulatory).any(), out.loc[normal & regulatory, "temp_key"].tolist()
    # The seed's sentiment threshold flags some normal customers with one harsh complaint; nothing more.
    assert (normal & out["is_flagged"]).sum() <= 0.03 * normal.sum()
    # The combined risk score ranks every labelled problem above the normal customers.
    top = out.sort_values("risk_score", ascending=False).head(int((~normal).sum()))
    assert (top["kind"] != "normal").mean() >= 0.95


def test_reasons_carry_count_first_and_last_event(e2e):
    out = e2e["out"]
    flagged = out[out["rule_tcpa_quiet_hours"].fillna(False)]
    assert len(flagged) > 0
    for reasons in flagged["reasons"]:
        qh = [r for r in reasons if r["code"] == "TCPA_QUIET_HOURS"][0]
        assert qh["regulation"].startswith("47 CFR 64.1200(c)(1)")
        assert qh["count"] >= 1 and qh["first_event"] <= qh["last_event"]
    by_reason = e2e["summary"]["flagged_by_reason"]
    assert by_reason["TCPA_QUIET_HOURS"] == len(flagged)
    assert set(by_reason) == set(R.ALL_REASON_CODES)


def test_complaint_text_never_written(e2e):
    texts = set(e2e["data"].complaints["complaint_description"].dropna())
    root = Path(e2e["root"])
    written = [p for p in root.rglob("*") if p.is_file() and "gold_compliance_risk" in str(p)]
    assert written
    for p in written:
        blob = p.read_bytes()
        for t in texts:
            assert t[:40].encode() not in blob, p


def test_missing_required_column_names_it(spark, tmp_path):
    from advanced_anomaly_detection.spark.compliance_job import run

    (tmp_path / "journey.csv").write_text("temp_key,event_ts,event_nm,visit_count\nA,2026-11-01 10:00:00,call,0\n")
    (tmp_path / "complaints.csv").write_text("temp_key,complaint_create_date,complaint_status\n")
    with pytest.raises(InputValidationError, match=r"journey: missing required column\(s\) \['direction'\]"):
        run(spark, Config(), str(tmp_path / "journey.csv"), str(tmp_path / "complaints.csv"), None,
            str(tmp_path / "out"), None)


def test_unparseable_dates_fail_with_example(spark, tmp_path):
    from advanced_anomaly_detection.spark.compliance_job import run

    rows = "\n".join(f"A{i},20/11/2026 10:0{i},call,outbound,0" for i in range(5))
    (tmp_path / "journey.csv").write_text("temp_key,event_ts,event_nm,direction,visit_count\n" + rows + "\n")
    (tmp_path / "complaints.csv").write_text("temp_key,complaint_create_date,complaint_status\n")
    with pytest.raises(InputValidationError, match=r"unparseable_event_ts.*e\.g\. event_ts='20/11/2026 10:00'"):
        run(spark, Config(), str(tmp_path / "journey.csv"), str(tmp_path / "complaints.csv"), None,
            str(tmp_path / "out"), None)


def test_bad_rows_quarantined_counted_and_missing_optional_columns_reported(spark, tmp_path):
    from advanced_anomaly_detection.spark.compliance_job import run

    journey = pd.DataFrame(
        [
            ("A", "2026-11-02 15:00:00", "call", "outbound", "0", "212-555-0100", "10001"),
            ("A", "2026-11-03T02:30:00Z", "sms", "outbound", "", "212-555-0100", "10001"),  # 9:30 p.m. EST
            ("B", "2026-11-04 13:00:00", "call", "OUTBOUND", "1", None, "99999X"),  # unknown postal code
            ("B", "2026-11-05 12:00:00", "call", "outbound", "1", None, "00000"),  # 7 a.m. EST: unknown zone
            (None, "2026-11-02 15:00:00", "call", "outbound", "0", None, None),  # null key
            ("C", "yesterday", "call", "outbound", "0", None, None),  # unparseable timestamp
            ("C", "2026-11-06 15:00:00", "call", "sideways", "0", None, None),  # bad direction
            ("C", "2026-11-06 15:00:00", "web_visit", "inbound", "-3", None, None),  # bad visit count
            ("C", "2026-11-30 15:00:00", "call", "outbound", "0", None, None),  # after the as-of date
        ],
        columns=["temp_key", "event_ts", "event_nm", "direction", "visit_count", "phone_number", "postal_code"],
    )
    complaints = pd.DataFrame(
        [
            ("A", "2026-11-01", "", "open", "Communication tactics", "Secret text: they call me at night.", "10001"),
            ("B", "not a date", "", "open", "Billing", "Another secret text about my bill.", "99999X"),
            ("C", "2026-11-01", "2026-11-02", "weird", "Billing", "Third secret narrative here.", None),
            ("A", "2026-12-01", "", "open", "Billing", "Made after the as-of date.", "10001"),
        ],
        columns=["temp_key", "complaint_create_date", "case_edit_date", "complaint_status",
                 "contact_reason_primary_1", "complaint_description", "postal_code"],
    )
    journey.to_csv(tmp_path / "journey.csv", index=False)
    complaints.to_csv(tmp_path / "complaints.csv", index=False)
    out = str(tmp_path / "gold")
    cfg = load_config(None, ["compliance.max_rejected_fraction=0.8"])  # 2 of the 4 complaints are bad
    summary = run(spark, cfg, str(tmp_path / "journey.csv"), str(tmp_path / "complaints.csv"), None, out,
                  "2026-11-20")
    j = summary["inputs"]["journey"]
    assert j["rows"] == 9 and j["accepted"] == 5
    assert j["rejected"] == {"null_temp_key": 1, "unparseable_event_ts": 1, "bad_direction": 1, "bad_visit_count": 1}
    assert j["outside_window"]["after_as_of"] == 1
    assert set(j["missing_optional_columns"]) == {"call_outcome", "consent_revoked_ts", "dnc_requested_ts"}
    assert summary["inputs"]["complaints"]["rejected"] == {"unparseable_complaint_create_date": 1,
                                                           "bad_complaint_status": 1}
    assert summary["inputs"]["complaints"]["outside_window"] == {"after_as_of": 1}
    skipped = summary["rules_skipped"]
    assert set(skipped) == {"REGF_CALL_AFTER_CONVERSATION", "TCPA_AFTER_REVOCATION"}
    assert "call_outcome" in skipped["REGF_CALL_AFTER_CONVERSATION"]
    assert summary["time_zones"]["zone_unknown_checked_fallback"] == 2
    # Quarantine: every rejected row with its reason, never the complaint text.
    qj = pd.read_parquet(summary["quarantine"]["journey"])
    assert sorted(qj["_reject_reason"]) == sorted(j["rejected"])
    qc = pd.read_parquet(summary["quarantine"]["complaints"])
    assert len(qc) == 2 and "complaint_description" not in qc.columns
    res = pd.read_parquet(out).set_index("temp_key")
    assert set(res.index) == {"A", "B"}  # C has no accepted rows left
    assert res.loc["A", "rule_tcpa_quiet_hours"] and res.loc["A", "rule_tcpa_open_complaint_contact"]
    assert res.loc["B", "rule_tcpa_quiet_hours"]  # 7 a.m. in New York, zone unknown: both coasts checked
    detail = [r["detail"] for r in res.loc["B", "reasons"] if r["code"] == "TCPA_QUIET_HOURS"][0]
    assert "unknown or ambiguous time zone" in detail
    assert pd.isna(res.loc["A", "rule_regf_call_after_conversation"])  # not evaluated: null, not False
    assert summary["model"]["status"].startswith("insufficient_customers")


def test_rerun_replaces_its_as_of_partition_only(spark, tmp_path):
    from advanced_anomaly_detection.spark.compliance_job import _writer

    out = str(tmp_path / "gold")
    rows = lambda d, keys, run: [(k, dt.date.fromisoformat(d), run) for k in keys]  # noqa: E731
    schema = "temp_key string, as_of_date date, run_id string"
    _writer(spark.createDataFrame(rows("2026-11-19", "AB", "r1"), schema), True).parquet(out)
    _writer(spark.createDataFrame(rows("2026-11-20", "ABC", "r2"), schema), True).parquet(out)
    _writer(spark.createDataFrame(rows("2026-11-20", "AB", "r3"), schema), True).parquet(out)  # rerun
    got = pd.read_parquet(out)
    got["as_of_date"] = got["as_of_date"].astype(str)
    assert sorted(map(tuple, got[["as_of_date", "run_id"]].drop_duplicates().to_numpy())) == [
        ("2026-11-19", "r1"), ("2026-11-20", "r3")]
    assert len(got) == 4


def test_cli_reports_user_errors_in_one_line(spark, tmp_path, capsys):
    from advanced_anomaly_detection.cli import main

    code = main(["score-compliance", "--journey", str(tmp_path / "nope.csv"), "--complaints",
                 str(tmp_path / "c.csv"), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "journey: input not found" in err and "\n" not in err


def test_job_script_exits_nonzero_on_bad_config(capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "jobs" / "score_compliance_risk.py"
    spec = importlib.util.spec_from_file_location("score_compliance_risk", path)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    code = job.main(["--journey", "j", "--complaints", "c", "--output", "o",
                     "--set", "compliance.rules.quiet_hours.start_hour=22"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "start_hour (22) must be before end_hour (21)" in err and "\n" not in err


def test_config_validation():
    with pytest.raises(Exception, match="fallback_zones"):
        load_config(None, ["compliance.rules.quiet_hours.fallback_zones=[Not/AZone]"])
    with pytest.raises(Exception, match="unknown key"):
        load_config(None, ["compliance.model.n_trees=5"])
    cfg = load_config(None, ["compliance.model.sample_size=5000", "compliance.rules.revocation.processing_days=5"])
    assert cfg.compliance.model.sample_size == 5000 and cfg.compliance.rules.revocation.processing_days == 5
    assert dt.date.fromisoformat("2026-11-20")
