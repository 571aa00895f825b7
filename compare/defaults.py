"""Every default of ``diecast compare`` in one place (the command documents each; ``--help`` prints them).

Standard library and dependency-free modules only, so that ``--help`` loads nothing heavy. The rules compare shares
with other processes are not restated here: the F1 floor is the rollback line (``runtime.contracts``), and the
intervals follow the one resampling policy (``evaluation.policy``).
"""

from __future__ import annotations

from pathlib import Path

from diecast import exits
from evaluation import policy
from runtime.contracts import ROLLBACK_F1

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_ROOT = REPO_ROOT / "build" / "compare"
JSON_FILE = "compare.json"
HTML_FILE = "report.html"

# Statistics.
CONFIDENCE = policy.CONFIDENCE  # two-sided level of every interval
BOOTSTRAP_ROUNDS = policy.RESAMPLES  # paired resamples of the labelled rows
SEED = policy.SEED  # the resampling generator's seed: a rerun gives the same intervals
MIN_TYPE_ROWS = 20  # per-defect-type recall is marked "too few rows" below this many defects of the type

# Verdict rules (compare.verdict.Rules).
MIN_F1 = ROLLBACK_F1  # reject a NEW model whose F1 is below the line a live model is rolled back at
GUARD_METRICS = ("f1", "recall")  # reject when NEW is significantly worse on any of these
PROMOTE_METRIC = "f1"  # promote only when NEW is at least OLD - MARGIN on this, significantly
MARGIN = 0.0  # non-inferiority margin: 0 means NEW must be significantly better to be promoted
MAX_LATENCY_RATIO = 1.5  # hold when NEW's median single-row latency exceeds OLD's by more than this factor
MIN_POSITIVES = 30  # hold when the labelled rows hold fewer defects than this: intervals too wide to act on

# Latency, measured side by side.
LATENCY_ROUNDS = 2000  # single-row runs per model, interleaved
LATENCY_WARMUP = 200  # runs per model before timing

# Exit codes.
EXIT_PROMOTE, EXIT_HOLD, EXIT_REJECT = exits.OK, exits.COMPARE_HOLD, exits.COMPARE_REJECT
EXIT_USAGE = exits.USAGE  # bad arguments, unknown or incompatible models, unusable data; nothing written
EXIT_CODES = {"promote": EXIT_PROMOTE, "hold": EXIT_HOLD, "reject": EXIT_REJECT}
