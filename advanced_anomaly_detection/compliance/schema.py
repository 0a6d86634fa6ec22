"""Input and output columns of the compliance job (documented in docs/compliance.md).

Types are Spark SQL type names; "timestamp" columns accept ISO 8601 strings (UTC unless an offset is
given) or dates, "date" columns ISO dates or timestamps.
"""
from __future__ import annotations

from typing import Dict, Tuple

# --- inputs -------------------------------------------------------------------------------------
JOURNEY_REQUIRED: Dict[str, str] = {
    "temp_key": "string",  # customer key
    "event_ts": "timestamp",  # event time, UTC
    "event_nm": "string",  # call, sms, email, web_visit, app_login, letter, opt_out, ...
    "direction": "string",  # outbound | inbound
    "visit_count": "long",  # visits recorded with the event (null = 0)
}
JOURNEY_OPTIONAL: Dict[str, str] = {
    "call_outcome": "string",  # connected / voicemail / no_answer / busy ... (conversation or not)
    "phone_number": "string",  # number contacted (time zone of the called party)
    "postal_code": "string",  # customer's postal code (time zone when the phone does not resolve)
    "consent_revoked_ts": "timestamp",  # when the customer revoked consent (null: not revoked)
    "dnc_requested_ts": "timestamp",  # when the customer asked to be put on the do-not-call list
}
COMPLAINTS_REQUIRED: Dict[str, str] = {
    "temp_key": "string",
    "complaint_create_date": "timestamp",
    "complaint_status": "string",  # open | pending | closed
}
COMPLAINTS_OPTIONAL: Dict[str, str] = {
    "case_edit_date": "timestamp",  # last edit; the resolution time of a closed complaint
    "contact_reason_primary_1": "string",
    "complaint_description": "string",  # free text: scored for sentiment, never written out
    "postal_code": "string",
}
ACCOUNTS_REQUIRED: Dict[str, str] = {"temp_key": "string", "account_open_date": "date"}
ACCOUNTS_OPTIONAL: Dict[str, str] = {}

DIRECTIONS = {
    "outbound": "outbound",
    "out": "outbound",
    "o": "outbound",
    "inbound": "inbound",
    "in": "inbound",
    "i": "inbound",
}
COMPLAINT_STATUSES = {
    "open": "open",
    "new": "open",
    "received": "open",
    "pending": "pending",
    "in progress": "pending",
    "in_progress": "pending",
    "escalated": "pending",
    "closed": "closed",
    "resolved": "closed",
}

# --- customer features (gold_compliance_risk; the model uses MODEL_FEATURES) --------------------
FEATURES: Tuple[str, ...] = (
    "total_interactions",  # 1 journey events in the lookback window
    "unique_event_types",  # 2 distinct event_nm
    "max_7day_interactions",  # 3 largest count of events in any 7 x 24 h window
    "complaints_open",  # 4 complaint status counts
    "complaints_pending",
    "complaints_closed",
    "complaint_reason_diversity",  # 5 distinct contact_reason_primary_1
    "complaint_to_visit_ratio",  # 6 complaints / max(total visits, 1), per customer
    "avg_resolution_days",  # 7 mean days create -> case_edit of closed complaints
    "postal_complaint_density",  # 8 complaints per customer in the customer's postal code
    "event_type_concentration",  # 9 share of the customer's most frequent event type
    "tenure_days",  # 10 as_of - account_open_date
    "repeat_complaints",  # 11 complaints within N days of the customer's previous one
    "is_active",  # 12 any event in the last N days
    "avg_complaint_sentiment",  # 13 mean TextBlob polarity of complaint texts
    "resolved_to_open_ratio",  # 14 closed / max(open + pending, 1)
    "high_interaction_postal",  # 15 postal code in the top quantile of interactions per customer
)
BOOLEAN_FEATURES = ("is_active", "high_interaction_postal")
# Missing means "nothing to measure": filled with these before the model; others get the median.
NEUTRAL_FILL: Dict[str, float] = {"avg_complaint_sentiment": 0.0, "avg_resolution_days": 0.0}
# Non-negative, heavy-tailed: log1p before standardising.
COUNT_FEATURES: Tuple[str, ...] = (
    "total_interactions",
    "unique_event_types",
    "max_7day_interactions",
    "complaints_open",
    "complaints_pending",
    "complaints_closed",
    "complaint_reason_diversity",
    "complaint_to_visit_ratio",
    "avg_resolution_days",
    "postal_complaint_density",
    "tenure_days",
    "repeat_complaints",
    "resolved_to_open_ratio",
)
MODEL_FEATURES: Tuple[str, ...] = FEATURES

# Context columns written beside the features (not model inputs).
CONTEXT_COLUMNS: Tuple[str, ...] = (
    "postal_code",
    "complaints_total",
    "total_visits",
    "outbound_calls",
    "outbound_texts",
    "first_event_ts",
    "last_event_ts",
    "contacts_zone_unknown",  # outbound calls/texts whose zone did not resolve (fallback zones checked)
    "contacts_zone_ambiguous",  # ... whose phone and postal code disagree (every candidate zone checked)
    "revocation_ts",
)

OUTPUT_TAIL: Tuple[str, ...] = (
    "reasons",
    "rule_score",
    "model_score",
    "model_flag",
    "risk_score",
    "is_flagged",
    "risk_tier",
    "as_of_date",
    "run_id",
)
