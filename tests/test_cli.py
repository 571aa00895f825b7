"""The `diecast` command: the listing, --version, each command's --help without its extra's packages, the one-line
message for a missing extra, the pyproject extras against the pinned requirements files, and an install of the
serving set alone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
import venv
from importlib import metadata
from pathlib import Path

import pytest

from diecast import cli, exits
from diecast.commands import InputError, model_folder, new_model_folder
from tests.conftest import ONNX_DIR, REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
HEAVY = sorted(set().union(*cli.EXTRA_MODULES.values()))  # every extra's top-level modules
PRESENT = [name for name, path in cli.COMMANDS.items() if (REPO_ROOT / (path.replace(".", "/") + ".py")).is_file()]


def _diecast(*args: str, prelude: str = "", cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    """``diecast ARGS`` in a fresh interpreter; ``prelude`` runs first (to block a module); the last stdout line
    lists the extras' modules that ended up imported."""
    script = textwrap.dedent(prelude) + textwrap.dedent(
        f"""
        import sys
        from diecast import cli
        try:
            code = cli.main({list(args)!r})
        except SystemExit as exc:
            code = exc.code
        print("imported:", sorted(m for m in {HEAVY!r} if m in sys.modules))
        sys.exit(code)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def _imported(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.strip().splitlines()[-1]


BLOCK = """
import sys

class Blocked:
    '''Imports of {names} fail as they do where the package is not installed.'''
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {names!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Blocked())
"""


def test_help_lists_every_command_without_importing_an_extra():
    proc = _diecast("--help")
    assert proc.returncode == 0, proc.stderr
    for name in cli.COMMANDS:
        assert re.search(rf"^  {name} ", proc.stdout, re.MULTILINE), name
    for name in PRESENT:
        assert cli._load(name).HELP in proc.stdout
    assert _imported(proc) == "imported: []"


def test_no_command_prints_the_listing_and_exits_2():
    proc = _diecast()
    assert proc.returncode == 2
    assert "commands:" in proc.stderr


def test_version_is_the_project_version():
    proc = _diecast("--version")
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == f"diecast {PYPROJECT['project']['version']}"


def test_an_unknown_command_is_refused_with_the_list():
    proc = _diecast("trian")
    assert proc.returncode == 2
    assert "unknown command 'trian'" in proc.stderr
    assert "train" in proc.stderr


@pytest.mark.parametrize("name", ["train", "convert", "data"])
def test_command_help_shows_examples_and_exit_codes_without_importing_torch(name):
    proc = _diecast(name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: diecast {name} ")
    assert f"examples:\n  diecast {name}" in proc.stdout
    assert "exit codes:\n  0  " in proc.stdout
    assert _imported(proc) == "imported: []"


def test_train_help_is_quick():
    """`diecast train --help` imports neither torch nor scikit-learn: well under a second, not torch's seconds."""
    command = [sys.executable, "-m", "diecast", "train", "--help"]
    subprocess.run(command, cwd=REPO_ROOT, capture_output=True, check=True)  # warm the file cache
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, capture_output=True, check=True)
    seconds = time.perf_counter() - started
    print(f"diecast train --help: {seconds:.2f} s")
    assert seconds < 3.0


def test_a_missing_extra_is_one_line_naming_it(tmp_path):
    proc = _diecast("train", "--model", str(tmp_path / "v9"), prelude=BLOCK.format(names={"torch"}))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"diecast train needs the 'convert' extra: {cli.install_hint('convert')}"
    assert "pip install" in cli.install_hint("convert")
    assert not (tmp_path / "v9").exists()


def test_a_missing_extra_while_importing_the_command_module_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "needs_duckdb.py").write_text('HELP = "a test command"\nEXTRA = "monitor"\nimport duckdb\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "fake", "needs_duckdb")
    monkeypatch.delitem(sys.modules, "duckdb", raising=False)
    exec(BLOCK.format(names={"duckdb"}), {})  # inserts the blocker into sys.meta_path
    try:
        assert cli.main(["fake"]) == 2
        assert capsys.readouterr().err == f"diecast fake needs the 'monitor' extra: {cli.install_hint('monitor')}\n"
        width = max(map(len, cli.COMMANDS))  # the listing's name column fits the longest command
        assert f"  {'fake':<{width}}  a test command (extra: monitor)" in cli.overview()
    finally:
        sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "Blocked"]


def test_a_missing_module_outside_the_extra_is_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "broken_cmd.py").write_text(
        'HELP = "x"\nEXTRA = "convert"\ndef configure(parser):\n    pass\n'
        "def run(args):\n    import no_such_module_anywhere\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "broken", "broken_cmd")
    with pytest.raises(ModuleNotFoundError, match="no_such_module_anywhere"):
        cli.main(["broken"])


def test_a_contradictory_command_line_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--cv-folds", "0", "--search-budget", "60"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: diecast train ")
    assert "diecast train: error: --search-budget needs cross-validation" in err


@pytest.mark.parametrize("name", PRESENT)
def test_every_command_module_has_the_interface(name):
    module = cli._load(name)
    assert isinstance(module.HELP, str)
    assert module.HELP
    assert "\n" not in module.HELP
    assert module.EXTRA is None or module.EXTRA in cli.EXTRA_MODULES
    assert callable(module.configure)
    assert callable(module.run)


# --- exit codes ---------------------------------------------------------------------------------------------------


def test_every_exit_code_has_one_meaning_in_every_command():
    numbers = [c.number for c in exits.TABLE]
    assert len(numbers) == len(set(numbers)), "a number with two meanings"
    assert [c.number for c in exits.TABLE if c.command is None] == [0, 1, 2]
    assert {c.command for c in exits.TABLE} - {None} <= set(cli.COMMANDS)
    assert set(exits.SUCCESS) == set(cli.COMMANDS)
    assert (exits.MONITOR_RETRAIN, exits.MONITOR_ROLLBACK) == (10, 20)  # what schedulers already act on


def _parser(name: str):
    import argparse

    parser = argparse.ArgumentParser(prog=f"diecast {name}", formatter_class=cli.HelpFormatter)
    cli._load(name).configure(parser)
    return parser


@pytest.mark.parametrize("name", PRESENT)
def test_each_commands_help_lists_its_exit_codes_from_the_table(name):
    help_text = _parser(name).format_help()
    assert exits.epilog(name) in help_text
    for code in exits.codes(name):
        assert re.search(rf"^  {code.number} +\S", help_text, re.MULTILINE), (name, code.number)


def test_the_docs_show_the_same_table():
    page = (REPO_ROOT / "docs" / "cli.md").read_text()
    section = page.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", section, re.MULTILINE)
    shown = {int(number): where.strip() for number, where in rows}
    assert shown == {c.number: f"`diecast {c.command}`" if c.command else "every command" for c in exits.TABLE}


def test_the_command_modules_and_the_libraries_use_the_table():
    from compare import defaults as compare_defaults
    from diecast.commands import score
    from monitor import constants

    assert compare_defaults.EXIT_CODES == {"promote": 0, "hold": exits.COMPARE_HOLD, "reject": exits.COMPARE_REJECT}
    assert constants.EXIT_CODES == {"ok": 0, "retrain": exits.MONITOR_RETRAIN, "rollback": exits.MONITOR_ROLLBACK}
    assert score.EXIT_REJECTS == exits.SCORE_REJECTS


# --- one way to name a model, one spelling of each shared flag ---------------------------------------------------


def _options(name: str) -> set[str]:
    return {o for a in _parser(name)._actions if a.help != "==SUPPRESS==" for o in a.option_strings}


@pytest.mark.parametrize("name", ["train", "convert", "score", "monitor", "invoke"])
def test_every_command_that_takes_a_model_takes_it_as_model(name):
    assert "--model" in _options(name)
    action = next(a for a in _parser(name)._actions if "--model" in a.option_strings)
    assert "version" in action.help.lower(), action.help
    assert "folder" in action.help.lower(), action.help


def test_seed_and_progress_are_spelled_alike_everywhere():
    for name in PRESENT:
        options = _options(name)
        assert {o for o in options if "seed" in o} <= {"--seed"}, name
        progress = {o for o in options if "progress" in o}
        assert progress in (set(), {"--progress", "--no-progress"}), (name, progress)


def test_a_model_is_a_version_under_the_models_folder_or_a_folder(tmp_path):
    models = ONNX_DIR.parent
    assert model_folder("v1.0", models, "--model") == models / "v1.0"
    assert model_folder(str(ONNX_DIR), tmp_path, "--model") == ONNX_DIR
    with pytest.raises(InputError) as missing:
        model_folder("v7.7", models, "--old")
    assert str(missing.value).startswith(f"--old v7.7: no model folder at {Path('v7.7').resolve()} nor at ")
    assert str(models / "v7.7") in str(missing.value)
    assert "versions in" in str(missing.value)
    assert "v1.0" in str(missing.value)
    with pytest.raises(InputError, match=r"--model .*: .* holds no manifest.json, so it is not a certified model"):
        model_folder(str(tmp_path), models, "--model")
    assert new_model_folder("v1.2", tmp_path, "--model") == tmp_path / "v1.2"
    assert new_model_folder("build/try/v9", tmp_path, "--model") == Path("build/try/v9")
    with pytest.raises(InputError, match=r"^--model must look like v1.0 \(v<major>\[.<minor>...\]\), got '1.1'$"):
        new_model_folder("1.1", tmp_path, "--model")


def test_version_prints_the_programs_version_and_train_keeps_its_older_flag_name():
    proc = _diecast("--version")
    assert proc.stdout.splitlines()[0] == f"diecast {PYPROJECT['project']['version']}"
    args = _parser("train").parse_args(["--version", "v1.2"])
    assert args.model == "v1.2"
    assert "--version" not in _parser("train").format_help()  # shown only as --model


# --- make -------------------------------------------------------------------------------------------------------


def _make_n(*args: str) -> str:
    proc = subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_names_models_as_the_commands_do():
    assert "convert --model v1.0 --out build/convert-check/v1.0 --force --compare-to v1.0" in _make_n("convert-check")
    demo = _make_n("demo")
    assert "train --model build/demo/deployment_models/v1.0" in demo
    assert "convert --model build/demo/deployment_models/v1.0 --out build/demo/models_onnx/v1.0" in demo
    assert "exits.INVOKE_ERROR_ANSWER" in demo  # the bad event must answer its error code, not pass silently
    compare = _make_n("compare", "NEW=v1.1", "DATA=x.csv", "COMPARE_ARGS=--guard f1")
    assert "compare --old v1.0 --new v1.1 --data x.csv  --guard f1" in compare


# --- set-up on a stock machine -------------------------------------------------------------------------------------


def test_a_cuda_build_of_torch_is_named_with_the_way_to_the_cpu_build():
    from convert import kernels

    warning = kernels.cuda_build_warning("2.13.0+cu126", "12.6")
    assert warning == (
        "warning: torch 2.13.0+cu126 is a CUDA build (CUDA 12.6); this project uses the CPU build: "
        "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    )
    assert kernels.cuda_build_warning("2.13.0+cpu", None) is None
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "kernels.warn_if_cuda_build()" in makefile.split("venv: $(STAMP)")[0]  # in the install recipe


def test_the_convert_requirements_say_where_the_cpu_build_comes_from_without_an_index():
    text = (REPO_ROOT / "requirements-convert.txt").read_text()
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in comments
    assert "CUDA" in comments
    options = [line for line in text.splitlines() if line.startswith("-") and not line.startswith("-r ")]
    assert options == []  # no --index-url / --extra-index-url: CI machines without access would hang
    for page in ("README.md", "docs/training.md"):
        assert "--index-url https://download.pytorch.org/whl/cpu" in (REPO_ROOT / page).read_text(), page


# --- the extras against the pinned requirements files -------------------------------------------------------------


def _pins(path: Path) -> set[str]:
    """Every requirement of a requirements file, following its -r includes."""
    pins: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins |= _pins(path.parent / line[3:].strip())
        elif line:
            pins.add(line)
    return pins


def _extra(name: str) -> set[str]:
    """An extra's requirements, with the project's own extras it names (``diecast-t1[a,b]``) expanded."""
    project = PYPROJECT["project"]
    out: set[str] = set()
    for req in project["optional-dependencies"][name]:
        own = re.fullmatch(rf"{project['name']}\[(.+)\]", req)
        out |= set().union(*(_extra(e.strip()) for e in own.group(1).split(","))) if own else {req}
    return out


def test_pip_install_dot_is_the_serving_set():
    assert set(PYPROJECT["project"]["dependencies"]) == _pins(REPO_ROOT / "requirements-runtime.txt")


@pytest.mark.parametrize("extra", ["convert", "monitor", "compare", "batch", "docs", "ablation", "dev"])
def test_each_extra_pins_what_its_requirements_file_pins(extra):
    runtime = _pins(REPO_ROOT / "requirements-runtime.txt")
    assert _extra(extra) == _pins(REPO_ROOT / f"requirements-{extra}.txt") - runtime


def test_every_requirements_file_has_its_extra():
    files = {p.name.removeprefix("requirements-").removesuffix(".txt") for p in REPO_ROOT.glob("requirements-*.txt")}
    assert files - {"runtime", "iac"} == set(PYPROJECT["project"]["optional-dependencies"])


@pytest.mark.parametrize("extra", sorted(cli.EXTRA_MODULES))
def test_the_dispatcher_knows_every_package_of_an_extra(extra):
    """Each distribution an extra pins provides a top-level module the dispatcher recognises as that extra's."""
    provides: dict[str, set[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            provides.setdefault(re.sub(r"[-_.]+", "-", dist).lower(), set()).add(module)
    for req in _extra(extra):
        dist = re.sub(r"[-_.]+", "-", re.split(r"[\[=<>~ ]", req, maxsplit=1)[0]).lower()
        assert provides.get(dist, set()) & cli.EXTRA_MODULES[extra], (extra, dist)


# --- pip install . -------------------------------------------------------------------------------------------------


def _copy_project(dest: Path) -> None:
    """What a build reads: pyproject.toml, README.md and the product packages (not the tests, data or models)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, dest / name)
    for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]:
        if "." not in pattern and (REPO_ROOT / pattern).is_dir():
            shutil.copytree(REPO_ROOT / pattern, dest / pattern, ignore=shutil.ignore_patterns("__pycache__"))


@pytest.mark.slow
def test_pip_install_dot_gives_a_diecast_that_runs_with_the_serving_set_alone(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    py = env_dir / "bin" / "python"
    _copy_project(tmp_path / "src")
    pip = [sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REPO_ROOT / "requirements-runtime.txt")], check=True, capture_output=True)
    subprocess.run([*pip, "--no-deps", str(tmp_path / "src")], check=True, capture_output=True)
    probe = f"import importlib.util as u; print([m for m in {HEAVY!r} if u.find_spec(m)])"
    assert subprocess.run([py, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"

    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    diecast = str(env_dir / "bin" / "diecast")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([diecast, *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)

    listing = run("--help")
    assert listing.returncode == 0, listing.stderr
    assert all(f"  {name} " in listing.stdout for name in cli.COMMANDS)
    assert run("--version").stdout.strip() == f"diecast {PYPROJECT['project']['version']}"
    assert run("train", "--help").returncode == 0
    missing = run("train", "--model", str(tmp_path / "models" / "v9"))
    assert missing.returncode == 2
    assert missing.stderr == "diecast train needs the 'convert' extra: pip install '.[convert]'\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "--check", "no/such.csv"], "error: no/such.csv: no such file"),
        (["data", "--production", "0", "build/x.csv"], "--production: must be a whole number of at least 1"),
        (["data", "--production", "10", "--vacuum", "2", "build/x.csv"], "--vacuum: must lie in [0, 1]"),
        (["convert", "--model", "v1.0", "--force", "--compare-to", "v1.0"], "the folder this conversion publishes"),
    ],
)
def test_bad_input_is_one_message_and_exit_2_with_nothing_written(tmp_path, args, message):
    """Given input that cannot work, the command names it on stderr, exits 2 and touches nothing: no traceback, no
    embedded dataset written in place of production rows, no shipped model overwritten to compare with itself."""
    shipped = ONNX_DIR / "model.onnx"
    before = shipped.stat().st_mtime_ns
    proc = _diecast(*args, cwd=REPO_ROOT)
    assert proc.returncode == exits.USAGE, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (REPO_ROOT / "build" / "x.csv").exists()
    assert shipped.stat().st_mtime_ns == before
