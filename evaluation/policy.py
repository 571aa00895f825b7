"""The one resampling policy of every interval the monitor and ``compare`` report. Standard library only.

An interval is the two-sided percentile interval, at ``CONFIDENCE``, of ``RESAMPLES`` bootstrap resamples of the
labelled rows (as many rows as there are, drawn with replacement), drawn from ``numpy.random.default_rng(SEED)``,
so that a rerun on the same rows reports the same interval.
"""

from __future__ import annotations

# The classification metrics reported on labelled rows, each with its interval.
METRICS = ("f1", "precision", "recall", "accuracy", "roc_auc", "fpr", "fnr")

CONFIDENCE = 0.95  # two-sided level of every interval
RESAMPLES = 2000  # bootstrap resamples behind each interval
SEED = 20261126  # the resampling generator's seed
