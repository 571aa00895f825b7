"""The serving path's targets against the reference deployment, each a ratio measured within one run; the CI gates
in test_bench.py sit below them. A ratio target is a floor (faster than the reference by at least this much), except
``p99_over_p50``, a ceiling."""

TARGET = {"handler": 15.0, "p99_over_p50": 2.0, "predict": 25.0, "batch": 4.0, "cold": 20.0}
