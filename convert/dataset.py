"""The embedded die-casting dataset: a deterministic synthetic stand-in, its schema and CSV loading.

The plant's real CSV is private. This module generates a stand-in with the same shape (7,535 rows, 16
``Process_*`` + 14 ``Sensor_*`` readings, a binary ``defect`` label at ~22.4 %, a ``defect_type``) from a
documented generative story, so that a model has real, nonlinear structure to learn and is not perfect.

Generative story
----------------
1. Each shot draws a handful of hidden states: the machine's operating point drifts slowly with the shift
   (melt and die temperature), the vacuum system is sometimes degraded (a heavy right tail), the melt carries
   dissolved hydrogen that rises with ambient humidity, and the plunger/hydraulics have a health factor.
2. Process parameters are set around nominal values and follow those states; sensor readings measure the states
   with their own noise (cavity pressure follows intensification pressure, mould temperatures follow the die
   temperature, the plunger's peak velocity follows the fast-shot speed, ...).
3. Seven defect mechanisms each get a logit built from interactions of standardised readings:
   gas porosity (poor vacuum x hot melt x hydrogen), shrinkage porosity (low intensification pressure x short
   hold x hot die), cold shut (cold melt x slow fill x cold die), misrun (light shot x low speed), flash
   (pressure over clamping force), die soldering (hot die x short spray) and hot tearing (uneven mould
   temperatures x short cooling). Each mechanism fires with probability sigmoid(logit); a part is defective if
   any fires, and its ``defect_type`` is the mechanism with the largest sampled margin. A small share of
   parts are mislabelled at inspection (both ways), so no model can be perfect.
4. One global offset is solved by bisection so the expected defect rate is 22.4 %.

Everything is drawn from one seeded ``numpy.random.Generator`` (PCG64), so the CSV is reproduced bit for bit.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert import defaults
from evaluation.labelled import LABEL_COLUMN, TYPE_COLUMN, DataValidationError, read_labelled  # noqa: F401  (re-exported: what training raises)

REPO_ROOT = defaults.REPO_ROOT
DATA_DIR = defaults.DATA_DIR
DEFAULT_CSV = defaults.DEFAULT_CSV
SCHEMA_JSON = DATA_DIR / "schema.json"

N_ROWS = 7535
SEED = 20240611
TARGET_DEFECT_RATE = 0.224
MISS_RATE = 0.03  # defects passed at inspection
SCRAP_RATE = 0.012  # good parts scrapped at inspection


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    unit: str
    description: str
    low: float  # expected operating range (schema), not a hard limit
    high: float
    decimals: int


FEATURES: tuple[Feature, ...] = (
    Feature("Process_Temperature", "process", "degC", "Melt temperature in the holding furnace", 610, 690, 2),
    Feature("Process_Pressure", "process", "MPa", "Intensification (third-phase) pressure", 90, 150, 2),
    Feature("Process_InjectionSpeed", "process", "m/s", "Fast-shot plunger speed set point", 2.0, 5.0, 3),
    Feature("Process_SlowShotSpeed", "process", "m/s", "Slow-shot plunger speed set point", 0.15, 0.45, 4),
    Feature("Process_FillTime", "process", "ms", "Cavity fill time", 25, 75, 2),
    Feature("Process_DieTemperature", "process", "degC", "Die temperature set point", 160, 280, 2),
    Feature("Process_CoolingTime", "process", "s", "Dwell time before die opening", 6, 18, 3),
    Feature("Process_HoldingTime", "process", "s", "Pressure holding time", 3, 9, 3),
    Feature("Process_CycleTime", "process", "s", "Total shot cycle time", 45, 80, 2),
    Feature("Process_VacuumLevel", "process", "mbar", "Residual cavity pressure under vacuum", 20, 400, 2),
    Feature("Process_ShotWeight", "process", "kg", "Poured shot weight", 2.1, 2.7, 4),
    Feature("Process_BiscuitThickness", "process", "mm", "Biscuit thickness after the shot", 15, 35, 2),
    Feature("Process_SprayTime", "process", "s", "Die release agent spray time", 1.2, 3.8, 3),
    Feature("Process_IntensificationTime", "process", "ms", "Rise time of the intensifier", 15, 45, 2),
    Feature("Process_SwitchoverPosition", "process", "mm", "Slow-to-fast shot switchover position", 370, 430, 2),
    Feature("Process_ClampingForce", "process", "kN", "Die clamping force", 7200, 8800, 1),
    Feature("Sensor_MoldTempFixed", "sensor", "degC", "Thermocouple in the fixed die half", 150, 290, 2),
    Feature("Sensor_MoldTempMoving", "sensor", "degC", "Thermocouple in the moving die half", 150, 290, 2),
    Feature("Sensor_CoolingWaterTempIn", "sensor", "degC", "Cooling water inlet temperature", 18, 32, 2),
    Feature("Sensor_CoolingWaterTempOut", "sensor", "degC", "Cooling water outlet temperature", 20, 38, 2),
    Feature("Sensor_CoolingWaterFlow", "sensor", "L/min", "Cooling water flow", 25, 55, 2),
    Feature("Sensor_HydraulicPressure", "sensor", "bar", "Accumulator hydraulic pressure", 115, 165, 2),
    Feature("Sensor_HydraulicOilTemp", "sensor", "degC", "Hydraulic oil temperature", 35, 58, 2),
    Feature("Sensor_CavityPressure", "sensor", "MPa", "Peak cavity pressure", 65, 130, 2),
    Feature("Sensor_MeltHydrogen", "sensor", "mL/100g", "Dissolved hydrogen in the melt", 0.05, 0.35, 4),
    Feature("Sensor_AmbientHumidity", "sensor", "%RH", "Relative humidity at the cell", 25, 90, 2),
    Feature("Sensor_AmbientTemperature", "sensor", "degC", "Air temperature at the cell", 15, 35, 2),
    Feature("Sensor_Vibration", "sensor", "mm/s", "RMS vibration of the shot end", 0.8, 5.5, 3),
    Feature("Sensor_PlungerVelocityPeak", "sensor", "m/s", "Measured peak plunger velocity", 1.8, 5.4, 3),
    Feature("Sensor_ShotSleeveTemp", "sensor", "degC", "Shot sleeve surface temperature", 160, 260, 2),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)

DEFECT_TYPES: tuple[str, ...] = (
    "gas_porosity",
    "shrinkage_porosity",
    "cold_shut",
    "misrun",
    "flash",
    "die_soldering",
    "hot_tear",
)


def _z(values: np.ndarray, mean: float, std: float) -> np.ndarray:
    return (values - mean) / std


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _readings(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Hidden plant states, then the 30 readings that follow them."""
    t = np.arange(n)
    shift_drift = np.sin(2 * np.pi * t / 480.0) + 0.3 * np.sin(2 * np.pi * t / 97.0)
    vacuum_degraded = rng.random(n) < 0.18
    humidity = np.clip(55 + 12 * np.sin(2 * np.pi * t / 2600.0) + rng.normal(0, 8, n), 25, 95)
    hydraulic_health = rng.normal(0, 1, n)

    r: dict[str, np.ndarray] = {}
    r["Process_Temperature"] = 650 + 8 * shift_drift + rng.normal(0, 11, n)
    r["Process_Pressure"] = 120 + 3 * hydraulic_health + rng.normal(0, 9, n)
    r["Process_InjectionSpeed"] = 3.5 + 0.15 * hydraulic_health + rng.normal(0, 0.45, n)
    r["Process_SlowShotSpeed"] = 0.3 + rng.normal(0, 0.04, n)
    r["Process_FillTime"] = 160 / r["Process_InjectionSpeed"] + rng.normal(0, 2.5, n)
    r["Process_DieTemperature"] = 220 + 10 * shift_drift + rng.normal(0, 17, n)
    r["Process_CoolingTime"] = 12 + rng.normal(0, 1.8, n)
    r["Process_HoldingTime"] = 6 + rng.normal(0, 0.9, n)
    r["Process_SprayTime"] = 2.5 + rng.normal(0, 0.38, n)
    r["Process_CycleTime"] = (
        38 + r["Process_CoolingTime"] + r["Process_HoldingTime"] + 2 * r["Process_SprayTime"] + rng.normal(0, 2, n)
    )
    base_vacuum = rng.lognormal(np.log(60), 0.35, n)
    r["Process_VacuumLevel"] = np.where(vacuum_degraded, base_vacuum * rng.uniform(1.8, 4.5, n), base_vacuum)
    r["Process_ShotWeight"] = 2.4 + rng.normal(0, 0.08, n)
    r["Process_BiscuitThickness"] = 25 + 40 * (r["Process_ShotWeight"] - 2.4) + rng.normal(0, 2.2, n)
    r["Process_IntensificationTime"] = 30 - 2 * hydraulic_health + rng.normal(0, 4.5, n)
    r["Process_SwitchoverPosition"] = 400 + rng.normal(0, 9, n)
    r["Process_ClampingForce"] = 8000 + rng.normal(0, 230, n)

    die = r["Process_DieTemperature"]
    r["Sensor_MoldTempFixed"] = die - 4 + rng.normal(0, 9, n)
    r["Sensor_MoldTempMoving"] = die - 8 + rng.normal(0, 11, n)
    r["Sensor_CoolingWaterTempIn"] = 24 + 2 * np.sin(2 * np.pi * t / 1300.0) + rng.normal(0, 1.6, n)
    r["Sensor_CoolingWaterFlow"] = 40 + rng.normal(0, 4.5, n)
    r["Sensor_CoolingWaterTempOut"] = (
        r["Sensor_CoolingWaterTempIn"] + 0.045 * (die - 150) * 40 / r["Sensor_CoolingWaterFlow"] + rng.normal(0, 1, n)
    )
    r["Sensor_HydraulicPressure"] = 140 + 6 * hydraulic_health + rng.normal(0, 5, n)
    r["Sensor_HydraulicOilTemp"] = 45 + 2.5 * shift_drift + rng.normal(0, 3, n)
    r["Sensor_CavityPressure"] = 0.78 * r["Process_Pressure"] + rng.normal(0, 5, n)
    r["Sensor_AmbientHumidity"] = humidity
    r["Sensor_AmbientTemperature"] = 24 + 4 * np.sin(2 * np.pi * t / 2600.0 + 1.0) + rng.normal(0, 1.5, n)
    r["Sensor_MeltHydrogen"] = np.clip(
        0.1 + 0.0015 * (humidity - 55) + 0.0012 * (r["Process_Temperature"] - 650) + rng.gamma(4, 0.012, n),
        0.02,
        None,
    )
    r["Sensor_Vibration"] = np.clip(2.5 - 0.5 * hydraulic_health + rng.gamma(2, 0.35, n), 0.3, None)
    r["Sensor_PlungerVelocityPeak"] = r["Process_InjectionSpeed"] * rng.normal(1.02, 0.04, n)
    r["Sensor_ShotSleeveTemp"] = 150 + 0.25 * die + rng.normal(0, 9, n)
    return r


def _mechanism_logits(r: dict[str, np.ndarray]) -> np.ndarray:
    """One logit per defect mechanism (columns in DEFECT_TYPES order), before the global offset."""
    temp = _z(r["Process_Temperature"], 650, 12)
    vac = _z(np.log(r["Process_VacuumLevel"]), np.log(70), 0.5)
    h2 = _z(r["Sensor_MeltHydrogen"], 0.15, 0.05)
    pres = _z(r["Process_Pressure"], 120, 9.5)
    hold = _z(r["Process_HoldingTime"], 6, 0.9)
    die = _z(r["Process_DieTemperature"], 220, 19)
    fill = _z(r["Process_FillTime"], 47, 7)
    weight = _z(r["Process_ShotWeight"], 2.4, 0.08)
    speed = _z(r["Process_InjectionSpeed"], 3.5, 0.47)
    clamp = _z(r["Process_ClampingForce"], 8000, 230)
    cav = _z(r["Sensor_CavityPressure"], 94, 8.5)
    spray = _z(r["Process_SprayTime"], 2.5, 0.38)
    mold_gap = _z(np.abs(r["Sensor_MoldTempFixed"] - r["Sensor_MoldTempMoving"]), 11, 8)
    cool = _z(r["Process_CoolingTime"], 12, 1.8)
    flow = _z(r["Sensor_CoolingWaterFlow"], 40, 4.5)

    softplus = np.logaddexp(0, 1)  # shift so that softplus(0) terms sit near zero
    gas = 1.6 * np.logaddexp(0, 1.5 * vac) * np.logaddexp(0, temp + 0.8 * h2) - 1.2 * softplus
    shrink = 1.2 * np.logaddexp(0, -pres - 0.6 * hold) * np.logaddexp(0, die) + 0.4 * np.maximum(-cav, 0) - 1.4
    cold = 1.4 * np.logaddexp(0, -temp) * np.logaddexp(0, fill - 0.5 * die) - 1.1
    misrun = 1.1 * np.maximum(-weight, 0) * np.logaddexp(0, -speed) + 0.5 * np.maximum(-weight - 1.5, 0) - 0.9
    flash = 1.8 * np.maximum(cav - clamp - 1.2, 0) ** 1.5 - 0.8
    solder = 1.3 * np.logaddexp(0, die - 0.7) * np.logaddexp(0, -spray) - 1.4
    tear = 1.1 * np.logaddexp(0, mold_gap) * np.logaddexp(0, -cool - 0.5 * flow) - 1.4
    return 2.0 * np.stack([gas, shrink, cold, misrun, flash, solder, tear], axis=1)


def _solve_offset(logits: np.ndarray, target: float) -> float:
    """Bisection for the offset that makes the expected share of parts with any defect equal ``target``."""
    lo, hi = -20.0, 20.0
    for _ in range(80):
        mid = (lo + hi) / 2
        p_clean = np.prod(1 - _sigmoid(logits + mid), axis=1)
        if np.mean(1 - p_clean) > target:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def generate(n_rows: int = N_ROWS, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Generate the synthetic dataset.

    Returns
    -------
    X : ndarray of float64, shape (n_rows, 30), columns in ``FEATURE_NAMES`` order, rounded as in the CSV
    y : ndarray of int64, shape (n_rows,), 1 = defect
    defect_type : list of str, ``"none"`` for good parts
    """
    rng = np.random.default_rng(seed)
    r = _readings(rng, n_rows)
    X = np.column_stack([np.round(r[f.name], f.decimals) for f in FEATURES])
    logits = _mechanism_logits(r)
    # Aim the mechanisms below the target so that, after inspection errors, the label rate meets it.
    pre_noise_rate = (TARGET_DEFECT_RATE - SCRAP_RATE) / (1 - MISS_RATE - SCRAP_RATE)
    logits = logits + _solve_offset(logits, pre_noise_rate)
    # Sample each mechanism through its logistic noise; keep the margin to name the dominant one.
    margin = logits + rng.logistic(0.0, 1.0, logits.shape)
    fired = margin > 0
    y = fired.any(axis=1)
    kind = np.argmax(margin, axis=1)
    # Inspection errors: a few defects are missed and a few good parts are scrapped.
    missed = y & (rng.random(n_rows) < MISS_RATE)
    scrapped = ~y & (rng.random(n_rows) < SCRAP_RATE)
    y = (y & ~missed) | scrapped
    scrapped_kind = rng.integers(0, len(DEFECT_TYPES), n_rows)
    kind = np.where(scrapped, scrapped_kind, kind)
    types = [DEFECT_TYPES[k] if d else "none" for k, d in zip(kind, y, strict=True)]
    return X, y.astype(np.int64), types


# --- Production drift scenarios (the monitor demo). Additive: generate() above is untouched, bit for bit. ---


@dataclass(frozen=True)
class Drift:
    """A documented production drift scenario for ``generate_production``; zero means the training plant.

    vacuum
        0..1, a degrading vacuum system (a real change in the process): the share of shots with a degraded vacuum
        rises from 18 % by up to 40 points, and every shot's residual cavity pressure by up to 60 %. Gas porosity
        follows, so the true defect rate rises; the model sees the readings and can follow.
    hydrogen_offset
        mL/100g added to ``Sensor_MeltHydrogen``'s reading: the sensor's calibration shifts, the melt does not. The
        defects stay as they were, but the model reads more hydrogen than there is (a pure input drift that
        misleads the model).
    """

    vacuum: float = 0.0
    hydrogen_offset: float = 0.0


NO_DRIFT = Drift()
_REFERENCE_OFFSET: list[float] = []


def reference_offset() -> float:
    """The global logit offset ``generate()`` solves on the embedded data: production keeps the same physics, so a
    degraded process shows up as more defects instead of being re-normalised to 22.4 %."""
    if not _REFERENCE_OFFSET:
        rng = np.random.default_rng(SEED)  # the same draws generate() makes first
        logits = _mechanism_logits(_readings(rng, N_ROWS))
        pre_noise_rate = (TARGET_DEFECT_RATE - SCRAP_RATE) / (1 - MISS_RATE - SCRAP_RATE)
        _REFERENCE_OFFSET.append(_solve_offset(logits, pre_noise_rate))
    return _REFERENCE_OFFSET[0]


def _degrade_vacuum(rng: np.random.Generator, r: dict[str, np.ndarray], level: float) -> None:
    n = len(r["Process_VacuumLevel"])
    newly_degraded = rng.random(n) < 0.40 * level
    factor = np.where(newly_degraded, rng.uniform(1.8, 4.5, n), 1.0) * (1 + 0.6 * level)
    r["Process_VacuumLevel"] = r["Process_VacuumLevel"] * factor


def generate_production(n_rows: int, seed: int, drift: Drift = NO_DRIFT) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Simulated production under ``drift``: readings as the model receives them, and the inspection result.

    Same generative story and offset as the embedded data (``generate``), drawn from ``seed``; returns ``X``
    (n_rows, 30) float64 in ``FEATURE_NAMES`` order (rounded as in the CSV), ``y`` (n_rows,) int64 and the
    defect types. The hydrogen calibration shift is applied to the reading only, after the defects are drawn.
    """
    rng = np.random.default_rng(seed)
    r = _readings(rng, n_rows)
    if drift.vacuum:
        _degrade_vacuum(rng, r, drift.vacuum)
    logits = _mechanism_logits(r) + reference_offset()
    margin = logits + rng.logistic(0.0, 1.0, logits.shape)
    y = (margin > 0).any(axis=1)
    kind = np.argmax(margin, axis=1)
    missed = y & (rng.random(n_rows) < MISS_RATE)
    scrapped = ~y & (rng.random(n_rows) < SCRAP_RATE)
    y = (y & ~missed) | scrapped
    kind = np.where(scrapped, rng.integers(0, len(DEFECT_TYPES), n_rows), kind)
    types = [DEFECT_TYPES[k] if d else "none" for k, d in zip(kind, y, strict=True)]
    r["Sensor_MeltHydrogen"] = r["Sensor_MeltHydrogen"] + drift.hydrogen_offset
    X = np.column_stack([np.round(r[f.name], f.decimals) for f in FEATURES])
    return X, y.astype(np.int64), types


def write_csv(path: Path, X: np.ndarray, y: np.ndarray, types: list[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([*FEATURE_NAMES, LABEL_COLUMN, TYPE_COLUMN])
        for row, label, kind in zip(X, y, types, strict=True):
            cells = [f"{v:.{f.decimals}f}" for v, f in zip(row, FEATURES, strict=True)]
            w.writerow([*cells, int(label), kind])
    tmp.replace(path)


def schema() -> dict:
    return {
        "description": "Synthetic die-casting dataset (stand-in for the plant's private CSV); see convert/dataset.py",
        "rows": N_ROWS,
        "seed": SEED,
        "label": {"name": LABEL_COLUMN, "values": [0, 1], "positive": "defect"},
        "defect_type": {"name": TYPE_COLUMN, "values": ["none", *DEFECT_TYPES]},
        "features": [
            {
                "name": f.name,
                "group": f.group,
                "unit": f.unit,
                "description": f.description,
                "expected_range": [f.low, f.high],
            }
            for f in FEATURES
        ],
    }


def load_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a training CSV and check it against the schema (``evaluation.labelled``, the one reader of labelled rows).

    Returns ``X`` (n, 30) float64 in ``FEATURE_NAMES`` order and ``y`` (n,) int64. Extra columns are
    ignored. Raises ``DataValidationError`` naming the column (and the 1-based data row) on any problem.
    """
    X, y, _ = read_labelled(Path(path), FEATURE_NAMES)
    return X, y


def check_csv(path: Path) -> bool:
    """Whether ``path`` holds exactly the rows and labels the generator makes (``diecast data --check``)."""
    X, y, _ = generate()
    X_disk, y_disk = load_csv(path)
    return bool(np.array_equal(X, X_disk) and np.array_equal(y, y_disk))


def write_embedded(path: Path = DEFAULT_CSV) -> str:
    """Regenerate the embedded dataset into ``path`` and its schema into ``SCHEMA_JSON``; returns a summary."""
    X, y, types = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, X, y, types)
    SCHEMA_JSON.write_text(json.dumps(schema(), indent=2) + "\n")
    counts = {k: types.count(k) for k in DEFECT_TYPES}
    return f"wrote {path}: {len(y)} rows, {int(y.sum())} defects ({y.mean():.1%}); by type: {counts}"


def write_production(path: Path, rows: int, seed: int, drift: Drift, with_embedded: bool = False) -> str:
    """``rows`` labelled rows of simulated production under ``drift`` into ``path`` (after the embedded rows
    when ``with_embedded``); returns a summary."""
    X, y, types = generate_production(rows, seed, drift)
    if with_embedded:
        X0, y0, t0 = generate()
        X, y, types = np.vstack([X0, X]), np.concatenate([y0, y]), [*t0, *types]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, X, y, types)
    return f"wrote {path}: {len(y)} rows ({drift}), {int(y.sum())} defects ({y.mean():.1%})"


def main(argv: list[str] | None = None) -> int:
    """``python -m convert.dataset``: an alias of ``diecast data``, which parses the command line."""
    import sys

    from diecast import cli

    return cli.main(["data", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
