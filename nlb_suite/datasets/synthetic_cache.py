"""Cache key of a synthetic dataset: a digest of the generator's own code and of its parameters.

The key changes whenever a byte of the generator changes — `synthetic.py` and every nlb_suite module it
imports, directly or not (the dataset specs, the NWB writer, the h5 helpers) — or the library versions that
shape its arrays and files (dysts too, for the attractor sets it integrates), so a cached folder is never
reused by a generator that would write other data.
"""

from __future__ import annotations

import ast
import hashlib
import logging
from pathlib import Path
from typing import Optional

from ..jsonio import dumps_json
from ..versions import installed_version

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the nlb_suite package folder
GENERATOR = PACKAGE_ROOT / "datasets" / "synthetic.py"
SHAPING_LIBRARIES = ("numpy", "scipy", "h5py", "pynwb", "hdmf")
# dysts integrates the attractor sets only (its default parameters and start states shape them): it keys those
# sets and leaves every other set's key, and the shared digest, as they were
ATTRACTOR_LIBRARIES = ("dysts",)

log = logging.getLogger("nlb_suite.synthetic")


def _module_file(parts: list[str]) -> Optional[Path]:
    """The source file of package module `parts` (relative to nlb_suite), or None if it is not one."""
    base = PACKAGE_ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_imports(path: Path) -> set[Path]:
    """Files of the nlb_suite modules that `path` imports (relative or absolute, at any depth in the file)."""
    package = [PACKAGE_ROOT.name, *path.relative_to(PACKAGE_ROOT).parent.parts]
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):  # still digested; a generator that cannot parse will not run anyway
        return set()
    modules: list[list[str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            modules.append(module)
            modules.extend(module + [alias.name] for alias in node.names)  # `from . import x`: x may be a module
        elif isinstance(node, ast.Import):
            modules.extend(alias.name.split(".") for alias in node.names)
    found = {_module_file(m[1:]) for m in modules if m and m[0] == PACKAGE_ROOT.name}
    return {f for f in found if f is not None and f != path}


def generator_sources() -> list[Path]:
    """The generator's source files: synthetic.py and every nlb_suite module it imports, transitively, but this
    module (the generator imports it for `generator_identity`; digests and caching shape no data)."""
    seen: set[Path] = set()
    todo = [GENERATOR]
    digests = PACKAGE_ROOT / "datasets" / "synthetic_cache.py"
    while todo:
        f = todo.pop()
        if f in seen or f == digests:
            continue
        seen.add(f)
        todo.extend(_package_imports(f) - seen)
    return sorted(seen)


def generator_digest(sources: Optional[list[Path]] = None) -> str:
    """SHA-256 over the generator's source files (path and bytes) and the versions of the libraries it uses."""
    h = hashlib.sha256()
    for f in sources if sources is not None else generator_sources():
        name = f.relative_to(PACKAGE_ROOT).as_posix() if f.is_relative_to(PACKAGE_ROOT) else f.name
        data = f.read_bytes()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    for lib in SHAPING_LIBRARIES:
        h.update(f"{lib}=={installed_version(lib) or '-'}\0".encode())
    return h.hexdigest()


def generator_identity(dataset: str, quirks: bool = True) -> str:
    """SHA-256 of what sets a synthetic dataset's data besides its seed and trial count: the generator's sources
    and libraries (`generator_digest`), quirks, its family's realism knobs in this process (a calibration probe may
    override them) and, for attractors, their libraries. ground_truth.h5 records it, so that data sets are pooled
    as one generator's draws (`nlb-eval compare`) only when they are."""
    from .known_systems import ATTRACTORS
    from .synthetic_dynamics import REALISM
    from .synthetic_tasks import FAMILIES

    family = FAMILIES.get(dataset)
    params = {"quirks": bool(quirks), "realism": repr(REALISM.get(family)) if family else None}
    if dataset in ATTRACTORS:
        params["libraries"] = {lib: installed_version(lib) or "-" for lib in ATTRACTOR_LIBRARIES}
    return hashlib.sha256(f"{generator_digest()}\0{dumps_json(params)}".encode()).hexdigest()


def cache_key(dataset: str, seed: int, trials: Optional[int] = None, quirks: bool = True,
              sources: Optional[list[Path]] = None) -> str:
    """Folder name of a cached synthetic dataset: `<dataset>-<digest of generator and parameters>`."""
    from .known_systems import ATTRACTORS

    params = {"dataset": dataset, "seed": int(seed), "trials": trials, "quirks": bool(quirks)}
    if dataset in ATTRACTORS:
        params["libraries"] = {lib: installed_version(lib) or "-" for lib in ATTRACTOR_LIBRARIES}
    digest = hashlib.sha256(f"{generator_digest(sources)}\0{dumps_json(params)}".encode()).hexdigest()
    return f"{dataset}-{digest[:20]}"


def cached_synthetic(cache_dir: str | Path, dataset: str, seed: int = 0, trials: Optional[int] = None,
                     quirks: bool = True, progress: bool = False) -> Path:
    """The NWB folder of synthetic `dataset` under `cache_dir/<cache_key>`, generated there on first use."""
    from .synthetic import write_synthetic

    root = Path(cache_dir) / cache_key(dataset, seed, trials, quirks)
    if not (root / "ground_truth.h5").exists():
        log.info("generating synthetic %s in %s", dataset, root)
        write_synthetic(dataset, root, seed=seed, trials=trials, quirks=quirks, progress=progress)
    return sorted(root.glob("**/*.nwb"))[0].parent
