"""``diecast compare --old v1.0 --new v1.1`` / ``make compare``: should a new certified model replace the old?

Both graphs are loaded through ``runtime.load`` (the serving path) and run on the same labelled rows (the
embedded test split, or a user CSV checked against the models' features). The report gives each model's metrics
with bootstrap confidence intervals, the paired differences with theirs, McNemar's exact test on the rows where they
disagree, their agreement, and their single-row latency measured side by side; then a verdict (promote / hold /
reject) under explicit, configurable rules (``compare.verdict``). Outputs: ``compare.json`` (for a pipeline)
and a self-contained ``report.html`` (for a person), verdict first. The statistics are ``evaluation.stats``'.

Never in the serving image: needs ``requirements-compare.txt`` (scipy, scikit-learn, matplotlib). Neither torch nor
``convert`` is imported here.
"""
