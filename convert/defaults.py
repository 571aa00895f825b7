"""The defaults the command line shows: the repository's folders and training's seed and caps.

Standard library only (with the runtime's dependency-free layout and contracts), so that ``diecast train --help``
and ``diecast convert --help`` print them without importing numpy, torch or scikit-learn. The modules that use them
import them from here.
"""

from __future__ import annotations

from pathlib import Path

from runtime import artifacts
from runtime.contracts import DEFAULT_VERSION

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
DEFAULT_CSV = DATA_DIR / "die_casting.csv"
DEPLOYMENT_DIR = REPO_ROOT / "deployment_models"  # the originals, one folder per version
MODELS_DIR = Path(artifacts.MODELS_DIR)  # the published, certified ONNX models
CONVERT_REPORTS = REPO_ROOT / "build" / "convert"  # the full certificate of each conversion, per version

VERSION = DEFAULT_VERSION  # the version train and convert work on unless told
SEED = 42  # split, initialisation and GB seed
AE_MAX_EPOCHS = 120  # AutoEncoder epoch cap; early stopping usually ends sooner
CV_FOLDS = 5  # stratified folds of the GB stage's cross-validated metrics (0 skips them)
FUZZ_ROWS = 100_000  # generated rows in the conversion certificate
