"""Adapter: a CFPB Consumer Complaint Database export (CSV) -> the compliance job's complaints schema.

Mapping (docs/compliance.md):
- temp_key               "cfpb-<Complaint ID>" (the public export has no customer key; see assign_keys)
- complaint_create_date  Date received
- case_edit_date         empty: the export carries no closure date (resolution time is unknown)
- complaint_status       Company response to consumer: "Closed ..." -> closed, "In progress" -> pending,
                         "Untimely response" and anything else -> open
- contact_reason_primary_1  "Issue / Sub-issue" (Issue alone when there is no sub-issue)
- complaint_description  Consumer complaint narrative (often empty; masked "XXXX" tokens kept)
- postal_code            ZIP code as text ("275XX" partial ZIPs and "XXXXX" kept; the zone lookup copes)
"""
from __future__ import annotations

from pathlib import Path
from typing import IO, Sequence, Union

import numpy as np
import pandas as pd

from advanced_anomaly_detection.errors import InputValidationError

CFPB_REQUIRED = (
    "Date received",
    "Issue",
    "Sub-issue",
    "Consumer complaint narrative",
    "ZIP code",
    "Company response to consumer",
    "Complaint ID",
)
COMPLAINT_COLUMNS = (
    "temp_key",
    "complaint_create_date",
    "case_edit_date",
    "complaint_status",
    "contact_reason_primary_1",
    "complaint_description",
    "postal_code",
    "source_complaint_id",
)


def status_from_response(response: object) -> str:
    text = str(response or "").strip().lower()
    if text.startswith("closed"):
        return "closed"
    if text == "in progress":
        return "pending"
    return "open"


def _blank_to_none(s: pd.Series) -> pd.Series:
    s = s.astype("string").str.strip()
    keep = (s.notna() & (s != "")).fillna(False).to_numpy(dtype=bool)
    return pd.Series(np.where(keep, s.astype(object), None), index=s.index, dtype=object)


def from_cfpb_frame(raw: pd.DataFrame, source: str = "CFPB export") -> pd.DataFrame:
    missing = [c for c in CFPB_REQUIRED if c not in raw.columns]
    if missing:
        raise InputValidationError(f"{source}: not a CFPB complaints export, missing column(s) {missing}")
    issue = _blank_to_none(raw["Issue"])
    sub = _blank_to_none(raw["Sub-issue"])
    reason = np.where(sub.notna(), issue.fillna("").astype(str) + " / " + sub.fillna("").astype(str), issue)
    created = pd.to_datetime(raw["Date received"], errors="coerce", format="mixed")
    out = pd.DataFrame(
        {
            "temp_key": "cfpb-" + raw["Complaint ID"].astype(str).str.strip(),
            # Unparseable dates are passed on as the original text: the job quarantines and counts them.
            "complaint_create_date": np.where(
                created.notna(), created.dt.strftime("%Y-%m-%d"), raw["Date received"].astype(str)
            ),
            "case_edit_date": pd.Series([None] * len(raw), index=raw.index, dtype=object),
            "complaint_status": raw["Company response to consumer"].map(status_from_response),
            "contact_reason_primary_1": pd.Series(reason, index=raw.index).where(issue.notna(), None),
            "complaint_description": _blank_to_none(raw["Consumer complaint narrative"]),
            "postal_code": _blank_to_none(raw["ZIP code"]),
            "source_complaint_id": raw["Complaint ID"].astype(str),
        },
        columns=list(COMPLAINT_COLUMNS),
    )
    return out.reset_index(drop=True)


def read_cfpb(path: Union[str, Path, IO[str]]) -> pd.DataFrame:
    """Read a CFPB export CSV (all columns as text, ZIPs keep leading zeros) into the complaints schema."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise InputValidationError(f"CFPB export not found: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputValidationError(f"CFPB export {path} is not a readable CSV: {exc}") from None
    return from_cfpb_frame(raw, source=str(path))


def assign_keys(complaints: pd.DataFrame, keys: Sequence[str], seed: int = 0, share: float = 1.0) -> pd.DataFrame:
    """Attach complaints to existing customer keys (deterministic by seed), e.g. generated journeys.

    `share` of the complaints are kept and each is given a random key from `keys`; the postal code of
    the complaint stays the complaint's own.
    """
    if not keys:
        raise ValueError("assign_keys needs at least one key")
    rng = np.random.default_rng(seed)
    out = complaints.sample(frac=share, random_state=seed) if share < 1 else complaints.copy()
    out["temp_key"] = rng.choice(np.asarray(list(keys), dtype=object), size=len(out))
    return out.reset_index(drop=True)
