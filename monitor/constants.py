"""The monitor's own thresholds, defaults and names, in one place.

The rules it shares with other processes live elsewhere, once: the rollback F1, the metric namespace and names and
the capture record in ``runtime.contracts``; the statistics and their resampling policy in ``evaluation``.
"""

from __future__ import annotations

from diecast import exits  # the one table of exit codes (standard library only)

# Signals, as the original design states them.
PERFORMANCE_DROP = 0.05  # F1 more than 5 % (relative) below the manifest's test F1
PSI_MODERATE = 0.10  # PSI rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major
PSI_MAJOR = 0.25  # data drift: any feature's PSI above this
NEW_LABELS = 1000  # labelled rows accumulated since the model was trained
SCHEDULE_DAYS = 30  # days since the model was trained
# Retrain signals that keep a calendar (time, labels accumulated), not evidence of a change: they fire on a quiet plant
SCHEDULED_SIGNALS = ("new_labels", "schedule")
MIN_LABELLED = 200  # the rollback line (runtime.contracts.ROLLBACK_F1) acts on at least this many labelled rows

# Drift waits for enough rows, and a feature counts as shifted only when chance alone is unlikely to explain its PSI.
# Under no drift, n * PSI on k bins is close to chi-square with k - 1 degrees of freedom (evaluation.stats.psi_limit),
# so chance alone gives a PSI of about 9 / n on the 10 deciles: 0.45 at 20 rows, above the major line itself.
DRIFT_SIGNIFICANCE = 0.01  # chance that a window drawn from the training distribution fires data_drift (all features)
# MIN_ROWS, predictions a window needs before drift decides anything. From ~123 rows the chi-square limit at
# DRIFT_SIGNIFICANCE / 30 features is below PSI_MAJOR, so a major shift is told apart from noise; and the chance that a
# decile stays empty (PSI's floor turns that into ~0.69 of PSI alone, a tail the chi-square misses) is below
# 10 * 0.9**200 ~ 7e-9 at 200 rows, where at 100 rows it (3e-4) is the whole per-feature budget.
MIN_ROWS = 200

# Windows.
DEFAULT_WINDOW = "7d"
MAX_TREND_WINDOWS = 26  # earlier windows shown in the trend (half a year of weeks)

# Decisions and exit codes (documented in the monitoring guide and in --help).
DECISIONS = ("ok", "retrain", "rollback")
EXIT_OK = exits.OK
EXIT_RETRAIN = exits.MONITOR_RETRAIN
EXIT_ROLLBACK = exits.MONITOR_ROLLBACK
EXIT_USAGE = exits.USAGE  # bad arguments, unreadable or invalid input, a manifest without the monitoring fields
EXIT_CODES = {"ok": EXIT_OK, "retrain": EXIT_RETRAIN, "rollback": EXIT_ROLLBACK}

# Outputs.
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
METRICS_EMF = "metrics.emf.json"
EXAMPLES_PER_PROBLEM = 5  # corrupt or invalid lines quoted in the report per kind
