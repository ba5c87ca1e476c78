"""The synthetic-data cache is keyed by the generator's code and parameters: a changed byte, a new cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nlb_suite import runs
from nlb_suite.datasets import synthetic, synthetic_cache
from nlb_suite.datasets.synthetic_cache import (
    cache_key,
    cached_synthetic,
    generator_digest,
    generator_sources,
)

PACKAGE = Path(synthetic_cache.__file__).resolve().parent.parent


@pytest.fixture
def package_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the nlb_suite sources that the key is computed from (edited by the tests, not the real one)."""
    root = tmp_path / "nlb_suite"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(synthetic_cache, "PACKAGE_ROOT", root)
    monkeypatch.setattr(synthetic_cache, "GENERATOR", root / "datasets" / "synthetic.py")
    return root


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_sources_are_the_generator_and_what_it_imports():
    names = {p.relative_to(PACKAGE).as_posix() for p in generator_sources()}
    assert {"datasets/synthetic.py", "datasets/synthetic_dynamics.py", "datasets/synthetic_tasks.py",
            "datasets/synthetic_nwb.py", "datasets/specs.py", "h5io.py", "errors.py"} <= names
    assert "metrics.py" not in names and "runs.py" not in names and "datasets/synthetic_cache.py" not in names


@pytest.mark.parametrize("name", ["datasets/synthetic.py", "datasets/synthetic_dynamics.py",
                                  "datasets/synthetic_tasks.py", "datasets/specs.py", "h5io.py"])
def test_one_changed_byte_in_a_source_changes_the_key(package_copy, name):
    before = cache_key("mc_maze_small", 0)
    assert cache_key("mc_maze_small", 0) == before  # stable while nothing changes
    _flip_byte(package_copy / name)
    assert cache_key("mc_maze_small", 0) != before


def test_a_module_outside_the_generator_does_not_change_the_key(package_copy):
    before = generator_digest()
    _flip_byte(package_copy / "metrics.py")
    assert generator_digest() == before


def test_a_module_the_generator_starts_importing_joins_the_key(package_copy):
    (package_copy / "datasets" / "shape_helper.py").write_text("SCALE = 1.0\n")
    gen = package_copy / "datasets" / "synthetic.py"
    gen.write_text(gen.read_text().replace("from .specs import", "from .shape_helper import SCALE  # noqa\nfrom .specs import", 1))
    assert package_copy / "datasets" / "shape_helper.py" in generator_sources()
    before = generator_digest()
    _flip_byte(package_copy / "datasets" / "shape_helper.py")
    assert generator_digest() != before


def test_every_parameter_is_in_the_key():
    base = cache_key("mc_maze_small", 0, None, True)
    others = [cache_key("mc_maze_medium", 0, None, True), cache_key("mc_maze_small", 1, None, True),
              cache_key("mc_maze_small", 0, 40, True), cache_key("mc_maze_small", 0, None, False)]
    assert len({base, *others}) == 5
    assert base.startswith("mc_maze_small-")


def test_the_dysts_version_keys_the_attractor_sets_only(monkeypatch):
    """dysts integrates lorenz / rossler / arneodo: another dysts version, other files; other sets keep their key."""
    real = synthetic_cache.installed_version
    before = {name: cache_key(name, 0) for name in ("lorenz", "rossler", "arneodo", "chaotic_rnn", "mc_maze_small")}
    digest = generator_digest()
    monkeypatch.setattr(synthetic_cache, "installed_version", lambda lib: "0.0.dev" if lib == "dysts" else real(lib))
    after = {name: cache_key(name, 0) for name in before}
    assert [n for n in before if after[n] != before[n]] == ["lorenz", "rossler", "arneodo"]
    assert generator_digest() == digest  # the shared digest (and so every other set's key) ignores dysts


def test_run_cache_regenerates_after_a_generator_change(package_copy, tmp_path, monkeypatch):
    """runs.synthetic_data reuses its folder while the generator is unchanged and never after a change."""
    calls = []

    def fake_write(name, out_dir, seed=0, trials=None, quirks=True, progress=False):
        calls.append(Path(out_dir))
        (Path(out_dir) / "sub-X").mkdir(parents=True)
        (Path(out_dir) / "sub-X" / "x.nwb").write_bytes(b"")
        (Path(out_dir) / "ground_truth.h5").write_bytes(b"")

    monkeypatch.setattr(synthetic, "write_synthetic", fake_write)
    monkeypatch.setenv("NLB_SUITE_CACHE", str(tmp_path / "cache"))
    first = runs.synthetic_data("mc_maze_small", progress=False)
    assert runs.synthetic_data("mc_maze_small", progress=False) == first and len(calls) == 1
    _flip_byte(package_copy / "datasets" / "synthetic_tasks.py")
    second = runs.synthetic_data("mc_maze_small", progress=False)
    assert len(calls) == 2 and second != first and first.exists()  # the old folder is left alone
    assert cached_synthetic(tmp_path / "cache" / "synthetic", "mc_maze_small") == second
