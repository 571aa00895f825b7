"""The ablation's grid, its work units, and the plan's predicted time.

The full grid is the original study's: latent sizes 4, 8, 12 and 16 (each its own AutoEncoder, trained as
``make train`` trains it) and none (0: the 30 readings alone); every classifier of ``convert.kinds``; 15, 20, 25
and 30 readings; ``make train``'s stratified folds. The quick grid (``QUICK=1``, CI) keeps every latent size and
every classifier, on fewer rows, epochs, trees, folds and selections.

A unit is one latent size on one fold: its encoder is trained once and shared by every classifier and feature
selection of that fold, never retrained per classifier. Standard library only (``--help`` prints the grids).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from convert import defaults, kinds

NO_LATENTS = 0
FEATURE_COUNTS = (15, 20, 25, 30)
DEFAULT_CONFIG = (kinds.DEFAULT_KIND, kinds.DEFAULT_LATENT_DIM, 30)  # the shipped v1.0: GB on 30 + 12
# The time model: an encoder epoch takes 0.30 s per 1,000 rows and early stopping typically ends at 0.8 of the cap
# (v1.0: 157 s for 99 of 120 epochs on 5,273 rows); a default GB fit 7.9 s per 1,000 rows (v1.0: 41.9 s), the
# other kinds in proportion to GB's as fitted side by side on 5,123 rows of the embedded data. Trees scale with
# the kind's cost (convert.kinds.Kind.cost). Small runs are dominated by what does not scale with rows: each
# worker imports torch and the five libraries (WORKER_START_SECONDS of CPU), and each fit carries the threshold rule's
# own work (FIT_OVERHEAD_SECONDS).
EPOCH_SECONDS_PER_1K = 0.30
TYPICAL_EPOCH_SHARE = 0.8
FIT_SECONDS_PER_1K = {
    "gradient_boosting": 7.9,
    "random_forest": 1.74,
    "xgboost": 0.85,
    "lightgbm": 0.21,
    "catboost": 0.63,
}
WORKER_START_SECONDS = 6.3
FIT_OVERHEAD_SECONDS = 0.05


@dataclass(frozen=True)
class Grid:
    latent_dims: tuple[int, ...]
    kinds: tuple[str, ...]
    features: tuple[int, ...]
    folds: int
    max_epochs: int
    rows: int | None = None  # a stratified sample of the rows (quick); None: every training + validation row
    params: dict[str, dict] = field(default_factory=dict)  # per kind, replacing its defaults (quick: fewer trees)

    def configs(self) -> list[tuple[str, int, int]]:
        return [(k, d, f) for d in self.latent_dims for k in self.kinds for f in self.features]

    def units(self) -> list[tuple[int, int]]:
        """(latent size, fold), the default's latent size first so that a cut budget still judges the default."""
        order = sorted(self.latent_dims, key=lambda d: d != DEFAULT_CONFIG[1])
        return [(d, fold) for d in order for fold in range(self.folds)]

    def params_of(self, kind: str) -> dict:
        return dict(self.params.get(kind, kinds.get(kind).default))

    def predicted_seconds(self, rows: int, jobs: int) -> dict:
        """The plan's time from the time model: encoders, classifier fits, and the whole on ``jobs`` cores."""
        fold_rows = rows * (self.folds - 1) / self.folds / 1000
        encoders = sum(d != NO_LATENTS for d in self.latent_dims) * self.folds
        encoder_s = encoders * EPOCH_SECONDS_PER_1K * fold_rows * self.max_epochs * TYPICAL_EPOCH_SHARE
        fits = 0.0
        for name in self.kinds:
            k = kinds.get(name)
            fits += FIT_SECONDS_PER_1K[name] * fold_rows * k.cost(self.params_of(name)) / k.cost(k.default)
        n_fits = len(self.configs()) * self.folds
        fit_s = fits * self.folds * len(self.latent_dims) * len(self.features) + n_fits * FIT_OVERHEAD_SECONDS
        work = encoder_s + fit_s
        workers = max(1, min(jobs, len(self.units())))
        return {
            "encoders": encoders,
            "fits": n_fits,
            "seconds_one_core": round(work + WORKER_START_SECONDS, 1),
            "seconds": round(work / workers + WORKER_START_SECONDS, 1),
        }


FULL = Grid(
    (NO_LATENTS, *kinds.LATENT_DIMS), tuple(kinds.KINDS), FEATURE_COUNTS, defaults.CV_FOLDS, defaults.AE_MAX_EPOCHS
)
QUICK = Grid(
    (NO_LATENTS, *kinds.LATENT_DIMS),
    tuple(kinds.KINDS),
    (15, 30),
    3,
    2,
    rows=450,
    params={k: kinds.get(k).small for k in kinds.KINDS},
)
