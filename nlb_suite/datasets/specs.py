"""The seven NLB'21 datasets and every parameter the benchmark uses for them (one source of truth).

Values follow the published benchmark (nlb_tools `make_tensors.PARAMS`, the NLB'21 paper and DANDI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import NLBInputError

SUPPORTED_BINS = (5, 20)
FORWARD_MS = 200


@dataclass(frozen=True)
class Window:
    """How one trial's window is cut: [align + offsets[0], align + offsets[1]) ms, or start..end fields."""

    align_field: Optional[str]
    offsets: Optional[tuple[int, int]] = None
    start_field: str = "start_time"
    end_field: str = "end_time"
    allow_overlap: bool = False


@dataclass(frozen=True)
class PsthSpec:
    """Condition-averaged target: conditions, window, Gaussian kernel (ms) and padding rules."""

    cond_fields: tuple[str, ...]
    window: Window
    kern_sd_ms: int
    pad: str = "back"
    seg_len_ms: Optional[int] = None
    skip_field: Optional[tuple[str, int]] = None  # trials with field == value are left out


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the benchmark needs to know about one dataset."""

    name: str
    description: str
    dandiset: str
    version: str
    subject: str
    session: Optional[str]
    n_heldin: int
    n_heldout: int
    n_train_val: int  # trials in splits train + val (the published "train" tensors)
    n_test: int
    train_window: Window
    eval_window: Window
    behavior_source: str  # "data" (continuous series) or "trial_info" (trial fields)
    behavior_fields: tuple[str, ...]
    lag_ms: Optional[int]
    psth: Optional[PsthSpec]
    behavior_mask: Optional[tuple[str, int]] = None  # behaviour kept only where field == value
    decode_mask_field: Optional[str] = None  # one decoder per value (0, 1) of this field
    jitter: bool = False  # dmfc_rsg: random shift of go alignment on non-test trials
    eval_seg_len_ms: Optional[int] = None
    eval_pad: str = "back"
    scaling_prefix: Optional[str] = None  # key prefix inside mc_maze_scaling results
    trial_fields: tuple[str, ...] = ()
    series: tuple[tuple[str, int], ...] = ()  # behaviour TimeSeries in processing/behavior (name, columns)
    smoothing: tuple[float, float] = (50.0, 0.01)  # published smoothing baseline [kern_sd ms, alpha]
    gpfa: tuple[int, float, float] = (20, 0.0, 0.0)  # published GPFA [latent_dim, alpha1, alpha2]

    @property
    def dandi_url(self) -> str:
        return "synthetic only" if self.synthetic_only else f"DANDI:{self.dandiset}/{self.version}"

    @property
    def synthetic_only(self) -> bool:
        """A set with known latent dynamics that exists only as `nlb-eval synth` output (no DANDI files)."""
        return self.dandiset == SYNTHETIC_ONLY

    @property
    def file_stem(self) -> str:
        return f"sub-{self.subject}" + (f"_ses-{self.session}" if self.session else "")

    @property
    def train_file(self) -> str:
        return f"sub-{self.subject}/{self.file_stem}_desc-train_behavior+ecephys.nwb"

    @property
    def test_file(self) -> str:
        return f"sub-{self.subject}/{self.file_stem}_desc-test_ecephys.nwb"

    def n_bins(self, bin_ms: int) -> int:
        """Bins per training trial at `bin_ms`."""
        a, b = self.train_window.offsets or (0, 0)
        return (b - a) // check_bin(bin_ms)

    def check_bin_fits(self, bin_ms: int) -> int:
        """`bin_ms` if the trial window is a whole number of such bins, else a one-line error (lorenz at 20 ms)."""
        a, b = self.train_window.offsets or (0, 0)
        if (b - a) % check_bin(bin_ms):
            raise NLBInputError(f"--bin: {self.name}'s {b - a} ms trials are not a whole number of {bin_ms} ms "
                                f"bins (use --bin 5)")
        return int(bin_ms)

    def fp_bins(self, bin_ms: int) -> int:
        return FORWARD_MS // check_bin(bin_ms)

    def result_key(self, bin_ms: int) -> str:
        """Group name in submissions/targets: the dataset name with `_20` at 20 ms."""
        return self.name + ("" if check_bin(bin_ms) == 5 else f"_{bin_ms}")


_MAZE_TRIAL_FIELDS = (
    "trial_type", "trial_version", "maze_id", "success", "target_on_time", "go_cue_time",
    "move_onset_time", "rt", "delay", "num_targets",
)
_MAZE_SERIES = (("hand_vel", 2), ("hand_pos", 2), ("cursor_pos", 2), ("eye_pos", 2))
_MAZE_WINDOW = Window("move_onset_time", (-250, 450))


def _maze(name: str, dandiset: str, version: str, session: str, heldin: int, heldout: int,
          n_train_val: int, n_test: int, lag: int, kern_sd: int, prefix: Optional[str],
          smoothing: tuple[float, float], gpfa: tuple[int, float, float], desc: str) -> DatasetSpec:
    return DatasetSpec(
        name=name, description=desc, dandiset=dandiset, version=version, subject="Jenkins",
        session=session, n_heldin=heldin, n_heldout=heldout, n_train_val=n_train_val, n_test=n_test,
        train_window=_MAZE_WINDOW, eval_window=_MAZE_WINDOW, behavior_source="data",
        behavior_fields=("hand_vel",), lag_ms=lag,
        psth=PsthSpec(("trial_type", "trial_version"), _MAZE_WINDOW, kern_sd),
        scaling_prefix=prefix, trial_fields=_MAZE_TRIAL_FIELDS, series=_MAZE_SERIES,
        smoothing=smoothing, gpfa=gpfa,
    )


DATASETS: dict[str, DatasetSpec] = {
    "mc_maze": _maze("mc_maze", "000128", "0.220113.0400", "full", 137, 45, 2295, 574, 100, 70, None,
                     (50, 0.01), (52, 0.01, 0.0), "Jenkins, M1/PMd, delayed center-out maze reaches"),
    "mc_rtt": DatasetSpec(
        name="mc_rtt", description="Indy, M1, self-paced random-target reaching (600 ms segments)",
        dandiset="000129", version="0.241017.1444", subject="Indy", session=None,
        n_heldin=98, n_heldout=32, n_train_val=1080, n_test=272,
        train_window=Window("start_time", (0, 600), allow_overlap=True),
        eval_window=Window("start_time", (0, 600), allow_overlap=True),
        behavior_source="data", behavior_fields=("finger_vel",), lag_ms=140, psth=None,
        trial_fields=(),
        series=(("finger_vel", 2), ("finger_pos", 3), ("cursor_pos", 2), ("target_pos", 2)),
        smoothing=(30, 0.1), gpfa=(36, 0.0, 0.0),
    ),
    "area2_bump": DatasetSpec(
        name="area2_bump", description="Han, area 2 (S1), active reaches and passive bumps",
        dandiset="000127", version="0.220113.0359", subject="Han", session=None,
        n_heldin=49, n_heldout=16, n_train_val=364, n_test=98,
        train_window=Window("move_onset_time", (-100, 500)),
        eval_window=Window("move_onset_time", (-100, 500), allow_overlap=True),
        behavior_source="data", behavior_fields=("hand_vel",), lag_ms=-20,
        psth=PsthSpec(("cond_dir", "ctr_hold_bump"), Window("move_onset_time", (-100, 500)), 40),
        decode_mask_field="ctr_hold_bump",
        trial_fields=("result", "ctr_hold", "ctr_hold_bump", "cond_dir", "bump_dir", "target_on_time",
                      "go_cue_time", "bump_time", "move_onset_time"),
        series=(("hand_vel", 2), ("hand_pos", 2), ("force", 6), ("joint_ang", 7), ("muscle_len", 39)),
        smoothing=(30, 0.01), gpfa=(22, 1e-4, 0.0),
    ),
    "dmfc_rsg": DatasetSpec(
        name="dmfc_rsg", description="Haydn, DMFC, ready-set-go interval reproduction",
        dandiset="000130", version="0.220113.0407", subject="Haydn", session=None,
        n_heldin=45, n_heldout=15, n_train_val=989, n_test=252,
        train_window=Window("go_time", (-1500, 0), allow_overlap=True),
        eval_window=Window("go_time", None, start_field="set_time", end_field="go_time"),
        behavior_source="trial_info", behavior_fields=("is_eye", "theta", "is_short", "ts", "tp"),
        lag_ms=None,
        psth=PsthSpec(("is_eye", "theta", "is_short", "ts"),
                      Window("go_time", None, start_field="set_time", end_field="go_time"), 70,
                      pad="front", seg_len_ms=1500, skip_field=("is_outlier", 1)),
        behavior_mask=("is_outlier", 0), jitter=True, eval_seg_len_ms=1500, eval_pad="front",
        trial_fields=("ready_time", "set_time", "go_time", "is_eye", "theta", "is_short", "ts", "tp",
                      "fix_time", "target_on_time", "is_outlier"),
        series=(), smoothing=(60, 0.001), gpfa=(32, 1e-4, 0.0),
    ),
    "mc_maze_large": _maze("mc_maze_large", "000138", "0.220113.0407", "large", 122, 40, 500, 100, 120, 50,
                           "[500] ", (40, 0.1), (44, 0.01, 0.0), "Jenkins maze, 500 training trials"),
    "mc_maze_medium": _maze("mc_maze_medium", "000139", "0.220113.0408", "medium", 114, 38, 250, 100, 120, 50,
                            "[250] ", (60, 0.1), (28, 0.0, 0.0), "Jenkins maze, 250 training trials"),
    "mc_maze_small": _maze("mc_maze_small", "000140", "0.220113.0408", "small", 107, 35, 100, 100, 120, 50,
                           "[100] ", (60, 0.1), (18, 0.01, 0.0), "Jenkins maze, 100 training trials"),
}

# Synthetic sets with known latent dynamics (datasets/known_dynamics.py): no DANDI files, one trial = one
# contiguous stretch of the system, 1 step = 1 bin of 5 ms, behaviour = the true latent state (lag 0; the
# chaotic RNN's 3 leading principal components). The full true latents are in ground_truth.h5.
SYNTHETIC_ONLY = "synthetic"


def _known(name: str, desc: str, heldin: int, heldout: int, n_train_val: int, n_test: int, window_ms: int,
           dim: int, gpfa_dim: int, psth_cond: Optional[str] = None) -> DatasetSpec:
    window = Window("start_time", (0, window_ms))
    psth = PsthSpec((psth_cond,), window, 50) if psth_cond else None
    return DatasetSpec(
        name=name, description=desc, dandiset=SYNTHETIC_ONLY, version="-", subject=name, session=None,
        n_heldin=heldin, n_heldout=heldout, n_train_val=n_train_val, n_test=n_test, train_window=window,
        eval_window=window, behavior_source="data", behavior_fields=("latent_state",), lag_ms=0, psth=psth,
        trial_fields=(psth_cond,) if psth_cond else (), series=(("latent_state", dim),),
        smoothing=(50.0, 0.01), gpfa=(gpfa_dim, 0.0, 0.0),
    )


KNOWN_DYNAMICS = {
    "lorenz": _known("lorenz", "Lorenz attractor (dysts), 70-step trials, 10 Poisson neurons (Sedler et al. 2023)",
                     10, 3, 1600, 400, 350, 3, 3),
    "rossler": _known("rossler", "Rossler attractor (dysts), 70-step trials, 10 Poisson neurons", 10, 3, 1600, 400,
                      350, 3, 3),
    "arneodo": _known("arneodo", "Arneodo attractor (dysts), 70-step trials, 10 Poisson neurons", 10, 3, 1600, 400,
                      350, 3, 3),
    "chaotic_rnn": _known("chaotic_rnn", "50-unit chaotic RNN (g 1.5), 1 s trials of 80 conditions, 50 Poisson "
                          "neurons (LFADS paper)", 38, 12, 640, 160, 1000, 3, 20, psth_cond="condition"),
}
DATASETS.update(KNOWN_DYNAMICS)

SCALING_GROUP = "mc_maze_scaling"


def check_bin(bin_ms: int) -> int:
    """Return `bin_ms` if the benchmark defines it (5 or 20 ms), else raise a clear error."""
    if int(bin_ms) not in SUPPORTED_BINS or int(bin_ms) != bin_ms:
        raise NLBInputError(f"--bin: unsupported bin width {bin_ms!r} ms (expected one of 5, 20)")
    return int(bin_ms)


def get_dataset(name: str) -> DatasetSpec:
    """Look a dataset up by name, with a one-line error listing the valid names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise NLBInputError(
            f"unknown dataset {name!r} (expected one of {', '.join(DATASETS)})"
        ) from None
