"""Strip an installed Lambda task root of what serving never loads: test suites, type stubs, headers,
onnxruntime's tools/training/quantization helpers and its C-API library (the Python binding is self-contained), and
the numpy subpackages that neither ``import numpy`` nor the handler touches (random, ma, polynomial, fft, testing,
typing, ctypeslib: numpy imports them lazily, on first attribute access, which serving never makes) and numpy's
compiled test helpers. The image test
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
REMOVE_GLOBS = (
    "onnxruntime/capi/libonnxruntime.so*",
    "**/*.pyi",
    "**/py.typed",
    "**/*.h",
    "**/*.c",
    "**/*.pxd",
    # numpy's compiled test helpers (only numpy/conftest.py and numpy's own tests import them; 1.8 MB, most of it
    # the _simd test module)
    "numpy/_core/_simd.*.so",
    "numpy/_core/_*_tests.*.so",
    "numpy/conftest.py",
)
# Not done: strip(1) on the shared libraries (3.3 MB). numpy's and onnxruntime's wheels hold patchelf-modified ELF
# files, and stripping those is a known way to get "ELF load command address/offset not page-aligned" at import
# (pypa/auditwheel#716), depending on the build host's binutils.


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
