"""Batch scoring: a CSV or Parquet file of readings scored by a certified model (``batch.score.score_file``).

``batch.job`` (what a run is given and reports), ``batch.engines`` (the engine interface and its table),
``batch.local`` and ``batch.ray_engine`` (the engines), ``batch.step`` (the scoring step every engine runs, on
``runtime.predictor.Predictor``), ``batch.io`` (reading, checking and atomic writing). The command line is
``diecast score`` (``python -m batch``). Never imported by the serving path, never in the serving image; pyarrow,
tqdm and ray are imported lazily (the ``batch`` extra, ``requirements-batch.txt``).
"""
