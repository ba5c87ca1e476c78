"""The baseline contract, baseline discovery (entry points `nlb_suite.baselines`) and typed configs.

A baseline is a class with a `Config` dataclass. It is built from a config and a RunContext, fits on
the train trials (held-in + held-out spikes, forward spikes, behaviour) and predicts rates in spikes per
bin for any trials from their held-in spikes: held-in, held-out and, if it can, the forward window.
Third-party packages add models by declaring an entry point in the group `nlb_suite.baselines`.
"""

from __future__ import annotations

import dataclasses
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np
import yaml

from .errors import ConfigFieldError, NLBInputError

ENTRY_POINT_GROUP = "nlb_suite.baselines"


@dataclass
class TrialSet:
    """Trials handed to a baseline. Arrays are (trials, bins, units) spike counts per bin, float32.

    Train sets carry held-out and forward spikes and behaviour; eval sets only held-in spikes.
    `bins` holds each row's bin index on the session's global grid (for ground-truth lookups).
    """

    split: str  # "train" or "eval"
    spikes_heldin: np.ndarray
    trial_ids: np.ndarray
    bins: np.ndarray  # (trials, bins) global bin index of each time step
    forward_bins: np.ndarray  # (trials, forward bins)
    spikes_heldout: Optional[np.ndarray] = None
    spikes_heldin_forward: Optional[np.ndarray] = None
    spikes_heldout_forward: Optional[np.ndarray] = None
    behavior: Optional[np.ndarray] = None

    @property
    def n_trials(self) -> int:
        return self.spikes_heldin.shape[0]

    def rows(self, index: np.ndarray) -> TrialSet:
        """These trials only (`index`: indices or a boolean mask over the trials): every array field, all of them
        per trial, indexed; the split kept."""
        arrays = {f.name: value for f in dataclasses.fields(self) if (value := getattr(self, f.name)) is not None
                  and f.name != "split"}
        for name, value in arrays.items():
            if np.ndim(value) < 1 or len(value) != self.n_trials:
                raise NLBInputError(f"TrialSet.rows: field {name} has shape {np.shape(value)}, expected "
                                    f"{self.n_trials} rows (one per trial)")
        index = np.asarray(index)
        if index.ndim != 1:
            raise NLBInputError(f"TrialSet.rows: index of shape {index.shape} (expected a 1-d array of trial indices "
                                "or a boolean mask)")
        return dataclasses.replace(self, **{name: np.asarray(value)[index] for name, value in arrays.items()})

    def held_in_only(self) -> TrialSet:
        """The same trials as a model sees them at prediction: held-in spikes, ids and bins, nothing else."""
        return dataclasses.replace(self, spikes_heldout=None, spikes_heldin_forward=None,
                                   spikes_heldout_forward=None, behavior=None)


@dataclass
class Rates:
    """Predicted rates in spikes per bin (non-negative). Forward rates are optional."""

    heldin: np.ndarray
    heldout: np.ndarray
    heldin_forward: Optional[np.ndarray] = None
    heldout_forward: Optional[np.ndarray] = None


@dataclass
class RunContext:
    """What a baseline may know about the run besides the trials."""

    dataset: str
    bin_ms: int
    n_heldin: int
    n_heldout: int
    n_forward_bins: int
    seed: int = 0
    device: str = "cpu"
    data_dir: Optional[Path] = None  # folder with the NWB files (and ground_truth.h5 when synthetic)
    run_dir: Optional[Path] = None  # where a baseline may write checkpoints and curves
    synthetic: bool = False
    # free-form hooks for trained baselines: "progress" (bool: show a bar), "on_epoch" (callable(epoch, row)
    # run after each epoch's validation, e.g. to score checkpoints in a benchmark)
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_trials(cls, dataset: str, bin_ms: int, train: TrialSet, **fields: Any) -> RunContext:
        """The context of a run on `train` (unit and forward-bin counts read from it); `fields` set the rest."""
        return cls(dataset=dataset, bin_ms=bin_ms, n_heldin=train.spikes_heldin.shape[2],
                   n_heldout=train.spikes_heldout.shape[2], n_forward_bins=train.forward_bins.shape[1], **fields)


class Baseline(ABC):
    """Base class of every baseline: subclass it, set `name`, `description` and `Config`."""

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type]
    # Does the run's seed change the fit? False where every seed gives the same rates (smoothing, GPFA): compare
    # and the report then count runs at other seeds as one draw, not as several fits of a configuration.
    uses_seed: ClassVar[bool] = True

    def __init__(self, config: Any, context: RunContext):
        self.config = config
        self.context = context

    @abstractmethod
    def fit(self, train: TrialSet) -> None:
        """Learn from the train trials."""

    @abstractmethod
    def predict(self, trials: TrialSet) -> Rates:
        """Rates (spikes per bin) for the given trials from their held-in spikes."""

    def validation_trials(self) -> Optional[np.ndarray]:
        """Indices (into the train TrialSet) of the trials the fit held back as its internal validation split,
        or None. The run scores the model on them (run.json `internal_validation`): the score `ensemble` and
        model selection use, never the eval trials."""
        return None

    def selection_fit(self) -> Optional[dict[str, Any]]:
        """After a refit on every train trial (one that trained on its validation trials, so
        `validation_trials()` is None): the selection fit's scores on them and the epochs it chose (run.json
        `selection_fit`); None otherwise."""
        return None

    def latents(self, trials: TrialSet) -> Optional[np.ndarray]:
        """The model's latent state (trials, bins, dims) in the trials' windows, from held-in spikes, or None.

        Optional: scored against the true latents of synthetic data (state R2). LFADS gives its factors,
        GPFA its (orthonormalised) posterior means, NODE/GRU-SAE their latent trajectory, NDT/STNDT the
        encoder output their rates are read out from; smoothing none.
        """
        return None


# ----- discovery ---------------------------------------------------------------------------------

# Our own baselines are also declared as entry points in setup.cfg; this table covers source checkouts.
BUILTIN_BASELINES = {
    "smoothing": "baselines.smoothing:SmoothingBaseline",
    "gpfa": "baselines.gpfa:GPFABaseline",
    "oracle": "baselines.oracle:OracleBaseline",
    "true_psth": "baselines.true_psth:TruePsthBaseline",
    "lfads": "baselines.lfads:LFADSBaseline",
    "node_sae": "baselines.sae:NodeSAEBaseline",
    "gru_sae": "baselines.sae:GRUSAEBaseline",
    "ndt": "baselines.ndt:NDTBaseline",
    "stndt": "baselines.stndt:STNDTBaseline",
    "gnocchi": "baselines.gnocchi:GnocchiBaseline",
}


def _load_target(target: str) -> type:
    module_name, _, attr = target.partition(":")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr)


def available_baselines() -> dict[str, str]:
    """Name -> 'module:Class' of every baseline: the built-in ones, then entry points (which may add)."""
    found = dict(BUILTIN_BASELINES)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def get_baseline(name: str) -> type[Baseline]:
    """The baseline class registered under `name`, with a one-line error listing the known names."""
    known = available_baselines()
    if name not in known:
        raise NLBInputError(f"unknown baseline {name!r} (expected one of {', '.join(sorted(known))})")
    try:
        cls = _load_target(known[name])
    except (ImportError, AttributeError) as exc:
        raise NLBInputError(f"baseline {name!r}: cannot load {known[name]} ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, Baseline)):
        raise NLBInputError(f"baseline {name!r} ({known[name]}) is not a nlb_suite.baseline_api.Baseline subclass")
    return cls


# ----- configs -------------------------------------------------------------------------------------

def config_dir(cls: type[Baseline]) -> Path:
    """Folder holding a baseline's default YAML configs: configs/<name>/ next to its module."""
    module = __import__(cls.__module__, fromlist=["__file__"])
    return Path(module.__file__).resolve().parent / "configs" / cls.name


def _coerce(value: Any, typ: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin is typing.Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        typ = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(typ), typing.get_args(typ)
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ValueError
        if typ is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ is str:
            return str(value)
        if origin in (list, tuple):
            items = yaml.safe_load(value) if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise ValueError
            inner = args[0] if args else Any
            out = [_coerce(v, inner, key, source) if inner is not Any else v for v in items]
            return tuple(out) if origin is tuple else out
    except (TypeError, ValueError):
        raise NLBInputError(f"{source}: {key}: {value!r} is not a valid {getattr(typ, '__name__', typ)}") from None
    return value


def check_known_keys(cls: type[Baseline], values: dict[str, Any], source: str,
                     origins: Optional[dict[str, str]] = None) -> None:
    """One-line error for keys that are not fields of `cls.Config`, naming where each came from (`origins`: key
    -> file or flag; else `source`)."""
    fields = [f.name for f in dataclasses.fields(cls.Config)]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        source = origin_prefix(tuple(unknown), origins or {}) or source
        raise NLBInputError(f"{source}: unknown key(s) {', '.join(unknown)} for baseline {cls.name} "
                            f"(expected: {', '.join(fields)})")


def build_config(cls: type[Baseline], values: dict[str, Any], source: str,
                 origins: Optional[dict[str, str]] = None) -> Any:
    """Instantiate `cls.Config` from a dict; unknown keys, wrong types and values a field rejects are one-line
    errors naming where the value came from (`origins`: key -> file or flag; else `source`)."""
    origins = origins or {}
    hints = typing.get_type_hints(cls.Config)
    check_known_keys(cls, values, source, origins)
    coerced = {k: _coerce(v, hints[k], k, origins.get(k, source)) for k, v in values.items()}
    try:
        return cls.Config(**coerced)
    except ConfigFieldError as exc:
        raise attributed(exc, origins) from None


def attributed(exc: ConfigFieldError, origins: dict[str, str]) -> NLBInputError:
    """`exc` prefixed with where its fields' values came from (`origins`: key -> file or flag); `exc` itself when
    they all hold class defaults (or values the class derived): nothing the user wrote."""
    prefix = origin_prefix(exc.fields, origins)
    return NLBInputError(f"{prefix}: {exc}") if prefix else exc


def origin_prefix(fields: tuple[str, ...], origins: dict[str, str]) -> str:
    """Where the user-given `fields` came from: "FILE" when they share one origin, else "FILE (a), --set (b)";
    fields left at the class default are not named."""
    given: dict[str, list[str]] = {}
    for key in fields:
        if key in origins:
            given.setdefault(origins[key], []).append(key)
    if len(given) <= 1:
        return next(iter(given), "")
    return ", ".join(f"{where} ({', '.join(keys)})" for where, keys in given.items())


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings (values parsed as YAML scalars/lists) into a dict."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise NLBInputError(f"--set: {pair!r} is not key=value")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def default_config_file(cls: type[Baseline], dataset: str, bin_ms: int) -> Optional[Path]:
    """The most specific default YAML: <dataset>_<bin>ms.yaml, then <dataset>.yaml, then default.yaml."""
    folder = config_dir(cls)
    for name in (f"{dataset}_{bin_ms}ms.yaml", f"{dataset}.yaml", "default.yaml"):
        if (folder / name).exists():
            return folder / name
    return None


NO_PROFILE = "none"  # --profile none: the YAML's top level only, even where a device profile exists


def read_config_file(path: Path) -> tuple[dict[str, Any], dict[str, dict]]:
    """A default YAML's top-level values and its `profiles` section (name -> values)."""
    loaded = yaml.safe_load(path.read_text()) or {}
    profiles = loaded.pop("profiles", {}) or {}
    return loaded, {name: values or {} for name, values in profiles.items()}


def read_given_config(path: Path, cls: type[Baseline]) -> tuple[dict[str, Any], dict[str, dict]]:
    """A `--config` file: a mapping of config fields (optionally with `profiles`), or a run folder (or its
    config.yaml: the `config` section); one-line errors for a missing, unreadable or malformed file."""
    path = Path(path)
    if path.is_dir() and (path / "config.yaml").is_file():  # a run folder: the config it ran with
        path = path / "config.yaml"
    if not path.is_file():
        raise NLBInputError(f"{path}: --config: {'a folder without config.yaml' if path.is_dir() else 'no such file'} "
                            f"(expected a YAML mapping of {cls.name} config fields, or a run folder)")
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise NLBInputError(f"{path}: --config: not valid YAML ({str(exc).splitlines()[0]})") from None
    if loaded is None:  # an empty file would silently mean the class defaults, not the dataset's settings
        raise NLBInputError(f"{path}: --config: empty file (expected a YAML mapping of {cls.name} config fields)")
    if _is_run_config(loaded):
        if loaded["baseline"] != cls.name:
            raise NLBInputError(f"{path}: --config: baseline: {loaded['baseline']!r} (expected {cls.name!r})")
        loaded = dict(loaded["config"])
    profiles = loaded.pop("profiles", {}) if isinstance(loaded, dict) else None
    if not isinstance(loaded, dict) or not isinstance(profiles, (dict, type(None))):
        raise NLBInputError(f"{path}: --config: not a mapping (expected a YAML mapping of {cls.name} config fields)")
    profiles = {name: values or {} for name, values in (profiles or {}).items()}
    for where, values in [("", loaded), *((f": profiles.{k}", v) for k, v in profiles.items())]:
        if isinstance(values, dict):
            check_known_keys(cls, values, f"{path}: --config{where}")
    return loaded, profiles


def config_made_elsewhere(path: Path, dataset: str, bin_ms: int) -> Optional[str]:
    """'a run on <dataset> at <bin> ms' when `path` is a run (folder or config.yaml) of another dataset or bin
    width than the one it configures; None otherwise (a plain config file, or a run of the same data)."""
    origin = config_run_origin(path)
    return None if origin is None or origin == (dataset, bin_ms) else f"a run on {origin[0]} at {origin[1]} ms"


def config_run_origin(path: Path) -> Optional[tuple[str, int]]:
    """(dataset, bin_ms) of the run whose folder or config.yaml `path` is; None for a plain config file."""
    path = Path(path)
    path = path / "config.yaml" if path.is_dir() else path
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if _is_run_config(loaded) and "dataset" in loaded:
        return str(loaded["dataset"]), int(loaded.get("bin_ms", 0))
    return None


def _is_run_config(loaded: Any) -> bool:
    """A run folder's config.yaml: the resolved `config` beside the run's baseline (and dataset, bin, seed)."""
    return isinstance(loaded, dict) and isinstance(loaded.get("config"), dict) and "baseline" in loaded


def config_profiles(cls: type[Baseline], dataset: str, bin_ms: int) -> list[str]:
    """Names of the profiles in the default YAML of (baseline, dataset, bin)."""
    path = default_config_file(cls, dataset, bin_ms)
    return [] if path is None else list(read_config_file(path)[1])


def resolve_config(cls: type[Baseline], dataset: str, bin_ms: int, overrides: Optional[dict] = None,
                   profile: Optional[str] = None, device: Optional[str] = None,
                   config_file: Optional[Path] = None,
                   override_origins: Optional[dict[str, str]] = None) -> tuple[Any, list[str]]:
    """Config from defaults <- per-dataset YAML <- profile section (e.g. "fast") <- overrides, and the list of
    sources applied (resolve_config_origins's first two results)."""
    config, sources, _ = resolve_config_origins(cls, dataset, bin_ms, overrides, profile, device, config_file,
                                                override_origins)
    return config, sources


def resolve_config_origins(cls: type[Baseline], dataset: str, bin_ms: int, overrides: Optional[dict] = None,
                           profile: Optional[str] = None, device: Optional[str] = None,
                           config_file: Optional[Path] = None, override_origins: Optional[dict[str, str]] = None,
                           ) -> tuple[Any, list[str], dict[str, str]]:
    """The config of config_values's values, the sources applied (for the run record) and where each given
    key's value came from (to attribute the errors a fit finds, `attributed`)."""
    values, origins, sources = config_values(cls, dataset, bin_ms, overrides, profile, device, config_file,
                                             override_origins)
    return build_config(cls, values, source=f"config of {cls.name}", origins=origins), sources, origins


def config_values(cls: type[Baseline], dataset: str, bin_ms: int, overrides: Optional[dict] = None,
                  profile: Optional[str] = None, device: Optional[str] = None, config_file: Optional[Path] = None,
                  override_origins: Optional[dict[str, str]] = None,
                  ) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Values over the class defaults from the per-dataset YAML <- profile section (e.g. "fast") <- overrides,
    not yet checked by the config class.

    With no profile named, a YAML profile called like the device (`cpu`) is applied: the YAML's top
    level holds the published GPU-scale settings, `profiles.cpu` a CPU-sized default. `profile="none"`
    keeps the top level. `config_file` (`run --config`) takes the place of the per-dataset YAML. An error
    names the file section a rejected value came from; an override's origin is `--set` unless
    `override_origins` names another (e.g. a search space). Returns the values, the file section or flag
    each came from, and the list of sources applied.
    """
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}  # key -> the file section or flag its value came from
    sources = ["class defaults"]

    def take(new: dict[str, Any], where: str) -> None:
        values.update(new)
        origins.update(dict.fromkeys(new, where))

    named = profile not in (None, NO_PROFILE)
    path = default_config_file(cls, dataset, bin_ms) if config_file is None else Path(config_file)
    if path is None and named:
        raise NLBInputError(f"baseline {cls.name}: no config file for {dataset} at {bin_ms} ms, "
                            f"so no profile {profile!r} (use --set)")
    if path is not None:
        top, profiles = read_config_file(path) if config_file is None else read_given_config(path, cls)
        take(top, str(path))
        elsewhere = config_made_elsewhere(path, dataset, bin_ms) if config_file is not None else None
        sources.append(f"{path} ({elsewhere})" if elsewhere else str(path))
        if profile is None and device in profiles:
            take(profiles[device], f"{path}: profiles.{device}")
            sources.append(f"{path.name}:profiles.{device} (device {device})")
        elif named:
            if profile not in profiles:
                known = ", ".join(list(profiles) + [NO_PROFILE])
                raise NLBInputError(f"config {path}: no profile {profile!r} (available: {known})")
            take(profiles[profile], f"{path}: profiles.{profile}")
            sources.append(f"{path.name}:profiles.{profile}")
    if overrides:
        take(overrides, "--set")
        origins.update({k: v for k, v in (override_origins or {}).items() if k in overrides})
        sources.append("--set " + " ".join(f"{k}={v}" for k, v in overrides.items()))
    return values, origins, sources
