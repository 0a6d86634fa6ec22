"""Detection quality of the compliance job against generated labels: rules vs model vs combined.

For each method a customer is "flagged" by:
- rules:    any rule fired (rule_score > 0)          ranked by rule_score, then number of violations
- model:    model_flag (calibrated score >= threshold) ranked by model_score
- combined: is_flagged (rules or model)               ranked by risk_score

Per problem kind k: recall = share of the customers of kind k that the method flags (any reason);
precision = share of the customers flagged with a reason that points at kind k (KIND_REASONS) that
are of kind k. The model gives no reasons per kind, so it has no per-kind precision; its precision is
the overall one. "all": flagged problem customers / flagged customers, and / labelled problems.
P@k: share of labelled problem customers among the k highest-ranked customers.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from advanced_anomaly_detection.compliance.generator import NORMAL, PROBLEM_KINDS

METHODS = ("rules", "model", "combined")
# Reason codes that point at each planted problem kind.
KIND_REASONS = {
    "over_calling": ("REGF_CALL_FREQUENCY", "REGF_CALL_AFTER_CONVERSATION"),
    "night_calls": ("TCPA_QUIET_HOURS",),
    "after_revocation": ("TCPA_AFTER_REVOCATION",),
    "complaint_storm": ("TCPA_OPEN_COMPLAINT_CONTACT", "NEGATIVE_COMPLAINT_SENTIMENT", "HIGH_INTERACTION_VOLUME"),
}


def _violations(reasons) -> int:
    if reasons is None or (isinstance(reasons, float) and np.isnan(reasons)):
        return 0
    total = 0
    for r in reasons:
        code = r["code"] if isinstance(r, dict) else r.code
        count = r["count"] if isinstance(r, dict) else r.count
        if code != "MODEL_ANOMALY" and count is not None and not (isinstance(count, float) and np.isnan(count)):
            total += int(count)
    return total


def _codes(reasons) -> frozenset:
    if reasons is None or (isinstance(reasons, float) and np.isnan(reasons)):
        return frozenset()
    return frozenset(r["code"] if isinstance(r, dict) else r.code for r in reasons)


def method_views(scored: pd.DataFrame) -> Dict[str, pd.DataFrame]:
    """method -> frame(temp_key, flagged, rank_score, tiebreak, codes)."""
    codes = scored["reasons"].map(_codes) if "reasons" in scored else pd.Series([frozenset()] * len(scored))
    base = scored[["temp_key"]].assign(codes=codes.to_numpy())
    violations = scored["reasons"].map(_violations) if "reasons" in scored else pd.Series(0, index=scored.index)
    model_score = scored["model_score"].astype(float).fillna(0.0)
    model_flag = scored["model_flag"].fillna(False).astype(bool)
    views = {
        "rules": base.assign(flagged=scored["rule_score"].astype(float) > 0, rank_score=scored["rule_score"].astype(float),
                             tiebreak=violations.astype(float)),
        "model": base.assign(flagged=model_flag, rank_score=model_score, tiebreak=0.0,
                             codes=[frozenset()] * len(base)),
        "combined": base.assign(flagged=scored["is_flagged"].astype(bool), rank_score=scored["risk_score"].astype(float),
                                tiebreak=violations.astype(float)),
    }
    return views


def default_top_k(n_problems: int) -> List[int]:
    return sorted({max(1, n_problems // 2), max(1, n_problems)})


def evaluate(scored: pd.DataFrame, labels: pd.DataFrame, top_k: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """One row per method: flagged, false positives, precision/recall overall and per kind, P@k."""
    lab = labels[["temp_key", "kind"]].drop_duplicates("temp_key")
    missing = set(lab["temp_key"]) - set(scored["temp_key"])
    n_problems = int((lab["kind"] != NORMAL).sum())
    top_k = list(top_k) if top_k else default_top_k(n_problems)
    rows = []
    for method, view in method_views(scored).items():
        v = lab.merge(view, on="temp_key", how="left")
        v["flagged"] = v["flagged"].fillna(False).astype(bool)
        is_problem = v["kind"] != NORMAL
        fp = int((v["flagged"] & ~is_problem).sum())
        tp = int((v["flagged"] & is_problem).sum())
        row: Dict[str, object] = {
            "method": method,
            "flagged": int(v["flagged"].sum()),
            "false_pos": fp,
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / n_problems if n_problems else float("nan"),
        }
        codes = v["codes"].map(lambda c: c if isinstance(c, frozenset) else frozenset())
        for kind in PROBLEM_KINDS:
            of_kind = v["kind"] == kind
            tpk = int((v["flagged"] & of_kind).sum())
            pointed = codes.map(lambda c, k=kind: bool(c & set(KIND_REASONS[k]))) & v["flagged"]
            row[f"{kind}_precision"] = (
                float((pointed & of_kind).sum() / pointed.sum()) if method != "model" and pointed.any() else float("nan")
            )
            row[f"{kind}_recall"] = tpk / int(of_kind.sum()) if of_kind.any() else float("nan")
        ranked = v.assign(rank_score=v["rank_score"].fillna(-1.0), tiebreak=v["tiebreak"].fillna(0.0)).sort_values(
            ["rank_score", "tiebreak", "temp_key"], ascending=[False, False, True], kind="stable"
        )
        for k in top_k:
            row[f"P@{k}"] = float((ranked.head(k)["kind"] != NORMAL).mean()) if k > 0 else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update(customers=len(lab), problems=n_problems, missing_from_output=len(missing), top_k=top_k,
                     per_kind={k: int((lab["kind"] == k).sum()) for k in PROBLEM_KINDS})
    return out


def format_table(table: pd.DataFrame) -> str:
    """The evaluation as one text table (precision/recall per kind as P/R pairs)."""
    kinds = [k for k in PROBLEM_KINDS if f"{k}_recall" in table]
    top = [c for c in table.columns if c.startswith("P@")]
    per_kind = table.attrs.get("per_kind", {})
    headers = ["method", "flagged", "false+", "precision", "recall"]
    headers += [f"{k} (n={per_kind.get(k, '?')}) P/R" for k in kinds] + top

    def f(x: float) -> str:
        return "  -  " if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.2f}"

    lines = []
    for _, r in table.iterrows():
        cells = [str(r["method"]), str(r["flagged"]), str(r["false_pos"]), f(r["precision"]), f(r["recall"])]
        cells += [f"{f(r[f'{k}_precision'])}/{f(r[f'{k}_recall'])}" for k in kinds]
        cells += [f(r[c]) for c in top]
        lines.append(cells)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    out = [fmt(headers), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines]
    a = table.attrs
    if a:
        out.append(
            f"{a.get('customers')} customers, {a.get('problems')} labelled problems; P@k over the k highest risk scores"
            + (f"; {a['missing_from_output']} labelled customers missing from the output" if a.get("missing_from_output") else "")
        )
    return "\n".join(out)
