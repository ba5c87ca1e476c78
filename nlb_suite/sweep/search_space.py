"""A baseline's search space: the hyperparameters a sweep samples (random search) or perturbs (PBT).

Declared next to the baseline's configs as `configs/<baseline>/search_space.yaml` (or any file given with
`--space`):

    fixed: {sv_rate: 0.2, sv_early_stop: true}   # every trial gets these config values
    params:
      lr: {low: 1.0e-5, high: 5.0e-3, log: true, init: 4.0e-3, explore: 0.3}
      layers: {low: 1, high: 4, type: int}
      norm: {choices: [layer, batch]}
    pbt: {perturbation_interval: 25, burn_in: 50, fixed: {lr_schedule: none}}
    start_with_config: true   # optional: the first trial starts at the baseline's own config values

Random search samples each numeric parameter uniformly (in log space with `log: true`) in [low, high].
PBT starts each parameter at `init` when given (else a sample) and, when a trial clones a better one,
multiplies each value by 1 +/- u, u uniform in [0.002, 1] x `explore` (AutoLFADS' perturbation), redrawn
until it lies in [low, high]; a choice is redrawn with probability `explore`. With `start_with_config`
the first trial takes every searched value from the baseline's resolved config (defaults <- YAML <-
profile <- fixed/--set) instead, so the search holds the untuned default as one of its members.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from ..errors import NLBInputError

SPACE_FILE = "search_space.yaml"
PARAM_KEYS = {"low", "high", "log", "init", "explore", "type", "choices"}
SHORT_INT_RANGE = 16  # an integer range with at most this many values has each checked (n_heads 2..8)
PBT_KEYS = {"perturbation_interval", "burn_in", "quantile_fraction", "plateau_generations", "min_improvement",
            "fixed"}


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: a numeric range (float or int, linear or log) or a list of choices."""

    name: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False
    init: Any = None
    explore: float = 0.2
    choices: Optional[tuple] = None

    def sample(self, rng: random.Random) -> Any:
        """A uniform draw (log-uniform with `log`) from the range, or one of the choices."""
        if self.choices is not None:
            return rng.choice(self.choices)
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(min(max(value, self.low), self.high))) if self.integer else value

    def start(self, rng: random.Random) -> Any:
        """PBT's starting value: `init` when declared, else a sample."""
        return self.init if self.init is not None else self.sample(rng)

    def perturb(self, value: Any, rng: random.Random) -> Any:
        """AutoLFADS' multiplicative perturbation within [low, high] (a choice: redrawn with prob. `explore`)."""
        if self.choices is not None:
            return rng.choice(self.choices) if rng.random() < self.explore else value
        for _ in range(100):
            step = rng.uniform(0.002 * self.explore, self.explore)
            new = value * (1 + step if rng.random() < 0.5 else 1 - step)
            if self.integer:
                new = int(round(new)) if round(new) != value else value + (1 if new > value else -1)
            if self.low <= new <= self.high:
                return new
        return type(value)(min(max(new, self.low), self.high))

    def checked_values(self) -> list[Any]:
        """The values a search space check tries: every choice, every value of an integer range of at most
        SHORT_INT_RANGE values, else the ends; and `init`."""
        if self.choices is not None:
            values = list(self.choices)
        elif self.integer and self.high - self.low < SHORT_INT_RANGE:
            values = list(range(int(self.low), int(self.high) + 1))
        else:
            values = [self.low, self.high]
        return values + ([self.init] if self.init is not None and self.init not in values else [])

    def ray_domain(self):
        """The Ray Tune domain sampling like `sample` (seeded by the search algorithm)."""
        from ray import tune

        if self.choices is not None:
            return tune.choice(list(self.choices))
        if self.integer:
            return tune.lograndint(int(self.low), int(self.high) + 1) if self.log else \
                tune.randint(int(self.low), int(self.high) + 1)
        return tune.loguniform(self.low, self.high) if self.log else tune.uniform(self.low, self.high)


@dataclass
class PBTSettings:
    """When PBT exploits and explores, and when it stops (AutoLFADS / lfads-torch defaults)."""

    perturbation_interval: int = 25  # epochs between exploit/explore rounds (and checkpoints)
    burn_in: int = 0  # no exploit before this epoch (e.g. until the KL/L2 ramps are done)
    quantile_fraction: float = 0.5  # the worse half clones a trial of the better half
    plateau_generations: int = 4  # stop when the best validation score has not improved ...
    min_improvement: float = 5e-4  # ... by this fraction over that many generations
    fixed: dict[str, Any] = field(default_factory=dict)  # config values for PBT only (e.g. no LR decay)


@dataclass
class SearchSpace:
    """Searched parameters, values every trial gets, and PBT settings; `source` names the file."""

    params: dict[str, Param]
    fixed: dict[str, Any]
    pbt: PBTSettings
    source: str
    start_with_config: bool = False  # the first trial starts at the baseline's config values

    def config_point(self, config: object) -> dict[str, Any]:
        """The searched values of a resolved config (the first trial's, with start_with_config); a value
        outside its range is a one-line error naming the space file."""
        point = {n: getattr(config, n) for n in self.params}
        for n, p in self.params.items():
            value = point[n]
            inside = value in p.choices if p.choices is not None else p.low <= value <= p.high
            if not inside:
                where = f"one of {list(p.choices)}" if p.choices is not None else f"[{p.low:g}, {p.high:g}]"
                raise NLBInputError(f"{self.source}: start_with_config: the config's {n}={value!r} lies outside "
                                    f"params.{n} (expected {where})")
        return point

    def ray_space(self, search: str) -> dict[str, Any]:
        """Ray Tune's param_space: domains for random search; PBT's `init` values where declared."""
        if search == "pbt":
            return {n: (p.init if p.init is not None else p.ray_domain()) for n, p in self.params.items()}
        return {n: p.ray_domain() for n, p in self.params.items()}

    def explore(self, config: dict[str, Any], rng: Optional[random.Random] = None) -> dict[str, Any]:
        """A PBT trial's new config: every searched value perturbed (the rest of `config` kept). `rng`: the
        sweep's seeded generator (None: an unseeded one, as a sweep started before 2026-12-05 calls it on resume)."""
        rng = rng or random.Random()
        return {**config, **{n: p.perturb(config[n], rng) for n, p in self.params.items() if n in config}}

    def fixed_for(self, search: str) -> dict[str, Any]:
        """Config values every trial of this search gets."""
        return {**self.fixed, **(self.pbt.fixed if search == "pbt" else {})}

    def corners(self) -> list[dict[str, Any]]:
        """Values to check against the baseline's config before any work: each range's ends and init (every
        value of a choice list or a short integer range), alone and beside every other parameter's (a search
        can draw any pair, and two fields can conflict: n_heads and model_dim, beta_start and beta_end)."""
        ends = {n: p.checked_values() for n, p in self.params.items()}
        out = [{n: v} for n, values in ends.items() for v in values]
        for a, b in itertools.combinations(ends, 2):
            out += [{a: x, b: y} for x in ends[a] for y in ends[b]]
        return out


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise NLBInputError(f"{where}: {key}: {value!r} is not a finite number")
    return float(value)


def parse_param(where: str, name: str, spec: Any) -> Param:
    """One `params` entry, checked: a range low < high (log: low > 0), an init inside it, or choices."""
    where = f"{where}: params.{name}"
    if not isinstance(spec, dict):
        raise NLBInputError(f"{where}: not a mapping (expected {{low: L, high: H}} or {{choices: [...]}})")
    unknown = sorted(set(spec) - PARAM_KEYS)
    if unknown:
        raise NLBInputError(f"{where}: unknown key(s) {', '.join(unknown)} (expected {', '.join(sorted(PARAM_KEYS))})")
    explore = _number(where, "explore", spec.get("explore", 0.2))
    if not 0 < explore <= 1:
        raise NLBInputError(f"{where}: explore: {explore} (expected 0 < explore <= 1)")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices or set(spec) & {"low", "high", "log", "type"}:
            raise NLBInputError(f"{where}: choices must be a non-empty list, without low/high/log/type")
        init = spec.get("init")
        if init is not None and init not in choices:
            raise NLBInputError(f"{where}: init {init!r} is not one of the choices {choices}")
        return Param(name, init=init, explore=explore, choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise NLBInputError(f"{where}: needs low and high (or choices)")
    kind = spec.get("type", "float")
    if kind not in ("float", "int"):
        raise NLBInputError(f"{where}: type: {kind!r} (expected float or int)")
    low, high = _number(where, "low", spec["low"]), _number(where, "high", spec["high"])
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise NLBInputError(f"{where}: log: {log!r} (expected true or false)")
    if not low < high or (log and low <= 0):
        raise NLBInputError(f"{where}: range [{spec['low']}, {spec['high']}] (expected low < high"
                            + (", low > 0 with log)" if log else ")"))
    init = spec.get("init")
    if init is not None and not low <= _number(where, "init", init) <= high:
        raise NLBInputError(f"{where}: init {init} outside [{spec['low']}, {spec['high']}]")
    integer = kind == "int"
    if integer:
        low, high = float(math.ceil(low)), float(math.floor(high))
        init = None if init is None else int(init)
    return Param(name, low, high, log, integer, init if init is None or integer else float(init), explore)


def _mapping(where: str, key: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NLBInputError(f"{where}: {key}: not a mapping")
    return value


def parse_space(data: Any, where: str) -> SearchSpace:
    """A search space from its YAML mapping; one-line errors naming the file and field."""
    if not isinstance(data, dict):
        raise NLBInputError(f"{where}: not a mapping (expected params:, fixed:, pbt:)")
    unknown = sorted(set(data) - {"params", "fixed", "pbt", "start_with_config"})
    if unknown:
        raise NLBInputError(f"{where}: unknown key(s) {', '.join(unknown)} (expected params, fixed, pbt, "
                            "start_with_config)")
    start = data.get("start_with_config", False)
    if not isinstance(start, bool):
        raise NLBInputError(f"{where}: start_with_config: {start!r} (expected true or false)")
    params = _mapping(where, "params", data.get("params"))
    if not params:
        raise NLBInputError(f"{where}: params: no searched parameters")
    fixed = _mapping(where, "fixed", data.get("fixed"))
    both = sorted(set(fixed) & set(params))
    if both:
        raise NLBInputError(f"{where}: {', '.join(both)} both fixed and searched")
    pbt_raw = _mapping(where, "pbt", data.get("pbt"))
    unknown = sorted(set(pbt_raw) - PBT_KEYS)
    if unknown:
        raise NLBInputError(f"{where}: pbt: unknown key(s) {', '.join(unknown)} (expected {', '.join(sorted(PBT_KEYS))})")
    pbt = PBTSettings(fixed=_mapping(where, "pbt.fixed", pbt_raw.get("fixed")))
    for key in ("perturbation_interval", "burn_in", "plateau_generations"):
        if key in pbt_raw:
            value = pbt_raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key != "burn_in" else 0):
                raise NLBInputError(f"{where}: pbt.{key}: {value!r} (expected an integer >= "
                                    f"{1 if key != 'burn_in' else 0})")
            setattr(pbt, key, value)
    if "quantile_fraction" in pbt_raw:
        pbt.quantile_fraction = _number(where, "pbt.quantile_fraction", pbt_raw["quantile_fraction"])
        if not 0 < pbt.quantile_fraction <= 0.5:
            raise NLBInputError(f"{where}: pbt.quantile_fraction: {pbt.quantile_fraction} (expected 0 < q <= 0.5)")
    if "min_improvement" in pbt_raw:
        pbt.min_improvement = _number(where, "pbt.min_improvement", pbt_raw["min_improvement"])
        if pbt.min_improvement < 0:
            raise NLBInputError(f"{where}: pbt.min_improvement: {pbt.min_improvement} (expected >= 0)")
    return SearchSpace({n: parse_param(where, n, s) for n, s in params.items()}, dict(fixed), pbt, where, start)


def load_space(path: Path) -> SearchSpace:
    """Read and check a search-space YAML file."""
    path = Path(path)
    if not path.is_file():
        raise NLBInputError(f"{path}: --space: no such file (expected a search-space YAML: params:, fixed:, pbt:)")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise NLBInputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_space(data, str(path))


def default_space_file(baseline_cls: type) -> Path:
    """configs/<baseline>/search_space.yaml next to the baseline's default configs."""
    from ..baseline_api import config_dir

    return config_dir(baseline_cls) / SPACE_FILE
