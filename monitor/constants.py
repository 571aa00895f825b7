"""Every threshold, default and name the monitor uses, in one place (issue #11 states the signals)."""

from __future__ import annotations

# Signals, as the original design states them.
PERFORMANCE_DROP = 0.05  # F1 more than 5 % (relative) below the manifest's test F1
PSI_MODERATE = 0.10  # PSI rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major
PSI_MAJOR = 0.25  # data drift: any feature's PSI above this
NEW_LABELS = 1000  # labelled rows accumulated since the model was trained
SCHEDULE_DAYS = 30  # days since the model was trained
ROLLBACK_F1 = 0.65  # roll back below this F1 ...
MIN_LABELLED = 200  # ... measured on at least this many labelled rows (below it: "insufficient labels")

# Windows.
DEFAULT_WINDOW = "7d"
MAX_TREND_WINDOWS = 26  # earlier windows shown in the trend (half a year of weeks)

# Statistics.
PSI_BINS = 10  # deciles of the training distribution
PSI_FLOOR = 1e-4  # an empty bin counts as this share, so that ln(a / e) stays finite
BOOTSTRAP_REPS = 1000  # confusion-matrix metrics (multinomial resampling of the four cells)
BOOTSTRAP_REPS_AUC = 200  # ROC-AUC (Poisson-weighted resampling of rows)
AUC_BOOTSTRAP_MAX = 20_000  # labelled rows; above, the Hanley-McNeil interval (a bootstrap rep costs O(n log n))
KS_EXACT_MAX = 10_000  # rows; above, Kolmogorov's limiting distribution for the KS p-value
CI_LEVEL = 0.95
SEED = 20261125  # bootstrap draws are reproducible run to run

# Decisions and exit codes (documented in README "Monitoring" and in --help).
DECISIONS = ("ok", "retrain", "rollback")
EXIT_OK = 0
EXIT_RETRAIN = 10
EXIT_ROLLBACK = 20
EXIT_USAGE = 2  # bad arguments, unreadable or invalid input, a manifest without the monitoring fields
EXIT_CODES = {"ok": EXIT_OK, "retrain": EXIT_RETRAIN, "rollback": EXIT_ROLLBACK}

# Capture records this monitor reads (runtime/capture.py writes them).
RECORD = "prediction"
SCHEMA = 1

# CloudWatch Embedded Metric Format.
METRIC_NAMESPACE = "DiecastT1"
METRIC_DIMENSION = "ModelVersion"

# Outputs.
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
METRICS_EMF = "metrics.emf.json"
EXAMPLES_PER_PROBLEM = 5  # corrupt or invalid lines quoted in the report per kind
