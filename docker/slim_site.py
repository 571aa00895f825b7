"""Strip an installed Lambda task root of what serving never loads: test suites, type stubs, headers,
onnxruntime's tools/training/quantization helpers and its C-API library (the Python binding is self-contained), and
the numpy subpackages that neither ``import numpy`` nor the handler touches (random, ma, polynomial, fft, testing,
typing, ctypeslib: numpy imports them lazily, on first attribute access, which serving never makes). The image test
proves it: the handler answers every dataset row inside the image exactly as outside.

Usage: python3 slim_site.py /var/task   (prints what it removed and the bytes saved)
"""

import shutil
import sys
from pathlib import Path

REMOVE_DIRS = (
    "onnxruntime/tools",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/datasets",
    "onnxruntime/backend",
    "numpy/f2py",
    "numpy/_pyinstaller",
    "numpy/_core/include",
    "numpy/doc",
    "numpy/random",
    "numpy/ma",
    "numpy/polynomial",
    "numpy/fft",
    "numpy/testing",
    "numpy/typing",
    "numpy/ctypeslib",
    "numpy/distutils",
    "bin",
)
REMOVE_GLOBS = ("onnxruntime/capi/libonnxruntime.so*", "**/*.pyi", "**/py.typed", "**/*.h", "**/*.c", "**/*.pxd")


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(root: Path) -> None:
    victims = [root / d for d in REMOVE_DIRS if (root / d).exists()]
    victims += [p for p in root.rglob("tests") if p.is_dir()]
    victims += [p for pattern in REMOVE_GLOBS for p in root.glob(pattern)]
    victims += [p for p in root.rglob("__pycache__") if p.is_dir()]
    saved = 0
    for path in sorted(set(victims)):
        if not path.exists():
            continue
        saved += size(path)
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    print(f"slim_site: removed {len(victims)} paths, {saved / 1e6:.1f} MB; {size(root) / 1e6:.1f} MB left in {root}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/var/task"))
