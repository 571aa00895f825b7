"""The ablation study (``diecast ablation``, ``make ablation``): which latent size, classifier and feature selection?

- ``ablation.grid``: the grid (full or quick), its work units and the plan's predicted time;
- ``ablation.study``: each unit (one latent size on one fold: its encoder, trained once, then every classifier and
  feature selection on it), under a time budget;
- ``ablation.report``: the table (mean +- sd over folds), the margin rule's pick, the reproducing ``make train``
  command, report.json and a self-contained report.html with its charts.
"""
