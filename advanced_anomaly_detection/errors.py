"""Errors a user can fix; the CLI and jobs report them in one line, without a traceback."""
from advanced_anomaly_detection.config import ConfigError  # noqa: F401  (re-exported)


class UserError(Exception):
    """Bad arguments or bad input data; the message says what and where."""


class InputValidationError(UserError):
    """Input table is unusable as a whole (missing required columns, uncastable types, unreadable)."""
