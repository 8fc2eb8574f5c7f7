"""Training configuration: one TOML file per preset in ``train/configs/``, read into dataclasses.

A preset holds the model configs (the same dataclasses ``cosmos`` uses) plus, per stage, the data
sources, the optimiser and the loop's cadence. Unknown keys are errors that name the key. Any value
can be overridden on the command line: ``--set autoencoder_stage.optim.steps=50``. A preset may start
from another with ``base = "cpu-small"``: its tables are merged key by key over the base's.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosmos.ar_lm import ArModelConfig
from cosmos.windows import WINDOW_STARTS
from cosmos.config import (AutoencoderConfig, ConfigError, DenoiserConfig, SamplingConfig, ScheduleConfig,
                           config_from_dict)


@dataclass
class DataSource:
    """One dataset, read with ``datasets.load_dataset(path, name, data_files=...)``.

    ``path="json"`` / ``"text"`` with ``data_files`` reads local files; any other ``path`` is a hub id
    (e.g. ``"roneneldan/TinyStories"``) and needs the network.
    """

    path: str
    data_files: dict[str, str] | None = None
    name: str | None = None          # the dataset's config name, if it has several
    text_column: str = "text"
    max_texts: int | None = None     # use at most this many texts per split (None = all)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ConfigError(f"data source path must be a non-empty string, got {self.path!r}")
        if self.max_texts is not None and (not isinstance(self.max_texts, int) or self.max_texts < 1):
            raise ConfigError(f"max_texts must be a positive integer, got {self.max_texts!r}")


def _source_list(cls: type, sources: list, table: str) -> list:
    """``sources`` (dicts from TOML, or ``cls`` instances) as ``cls`` instances; at least one."""
    built = [s if isinstance(s, cls) else config_from_dict(cls, s, where=f"{table} source") for s in sources]
    if not built:
        raise ConfigError(f"{table}.sources is empty: name at least one dataset")
    return built


def _default_splits() -> dict[str, str]:
    return {"train": "train", "validation": "validation", "test": "test"}


@dataclass
class DataConfig:
    sources: list[DataSource]
    stride: int | None = None        # window stride in tokens; None = half a window (50% overlap)
    splits: dict[str, str] = field(default_factory=_default_splits)
    # "any": windows start every ``stride`` tokens; "sentence": only where a sentence starts (the text's
    # start first), at least ``stride`` tokens apart, so samples begin where text begins (cosmos.windows)
    window_start: str = "any"

    def __post_init__(self) -> None:
        self.sources = _source_list(DataSource, self.sources, "data")
        if self.stride is not None and (not isinstance(self.stride, int) or self.stride < 1):
            raise ConfigError(f"stride must be a positive integer, got {self.stride!r}")
        if self.window_start not in WINDOW_STARTS:
            raise ConfigError(f"window_start must be one of {list(WINDOW_STARTS)}, got {self.window_start!r}")


def _check_folder(name: str, value: Any) -> None:
    if value is not None and not (isinstance(value, str) and value.strip()):
        raise ConfigError(f"{name} must be a folder path or hub id, got {value!r}")


@dataclass
class PairSource:
    """One dataset of (source, target) text pairs for prompt-conditioned diffusion, read like
    :class:`DataSource` (``datasets.load_dataset``; local ``json``/``text`` files or a hub id).

    Either ``source_column`` + ``target_column`` (e.g. question generation, summarisation), or
    ``split_sentences = K``: source = the first K sentences of ``text_column``, target = the rest
    (story continuation). Targets are cut to the autoencoder's L tokens, sources to the denoiser's
    ``source_max_length``; pairs with an empty side are skipped.
    """

    path: str
    data_files: dict[str, str] | None = None
    name: str | None = None
    source_column: str | None = None
    target_column: str | None = None
    text_column: str = "text"          # read with split_sentences
    split_sentences: int | None = None
    max_pairs: int | None = None       # use at most this many records per split (None = all)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ConfigError(f"pair source path must be a non-empty string, got {self.path!r}")
        columns = self.source_column is not None or self.target_column is not None
        if columns == (self.split_sentences is not None):
            raise ConfigError(f"pair source {self.path!r}: set either source_column and target_column, or "
                              "split_sentences (not both, not neither)")
        if columns and not (isinstance(self.source_column, str) and isinstance(self.target_column, str)):
            raise ConfigError(f"pair source {self.path!r}: source_column and target_column go together, got "
                              f"{self.source_column!r} and {self.target_column!r}")
        for name in ("split_sentences", "max_pairs"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")


@dataclass
class PairDataConfig:
    sources: list[PairSource]
    splits: dict[str, str] = field(default_factory=_default_splits)

    def __post_init__(self) -> None:
        self.sources = _source_list(PairSource, self.sources, "pairs")


@dataclass
class OptimConfig:
    """AdamW with linear warmup, then cosine decay to ``min_lr`` (or constant)."""

    batch_size: int = 64
    steps: int = 1000
    lr: float = 2e-4
    min_lr: float = 1e-4
    warmup_steps: int = 100
    schedule: str = "cosine"         # "cosine" | "constant"
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 1e-5
    grad_clip: float = 10.0

    def __post_init__(self) -> None:
        for name in ("batch_size", "steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        for name in ("lr", "min_lr", "eps", "grad_clip"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        self.betas = tuple(self.betas)

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class LoopConfig:
    log_every: int = 10       # metrics line every K steps
    eval_every: int = 200     # held-out evaluation (+ sample texts) every K steps
    save_every: int = 200     # resumable state every K steps
    eval_windows: int = 256   # held-out windows used by each evaluation

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"loop.{f.name} must be a positive integer, got {value!r}")


@dataclass
class AutoencoderStage:
    data: DataConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    cache_features: bool = True   # run the frozen encoder once over the data, not every step
    restrict_vocab: bool = True   # output head over the tokens seen in training only
    # start the output head as a linear probe on the normalised features (ridge regression onto the
    # tokens, then the best scale): alone it decodes them at ~0.95, so the decoder's MSE target is
    # also a CE target from step 0
    probe_head: bool = False
    # A pipeline folder (or hub id) whose autoencoder starts this run instead of a fresh initialisation
    # (a longer schedule, or fine-tuning on other data); its architecture and head vocabulary must be
    # the ones this config builds. The probe head is then not refitted.
    init_from: str | None = None
    # Augmentation curriculum: the autoencoder trains clean for ``augment_clean_steps``, then the three
    # augmentations and latent dropout ramp linearly to the config's strengths over ``augment_ramp_steps``.
    # 0 and 0 (the default): the configured strengths from step 1, as the paper trains.
    augment_clean_steps: int = 0
    augment_ramp_steps: int = 0

    def __post_init__(self) -> None:
        _check_folder("autoencoder_stage.init_from", self.init_from)
        for name in ("augment_clean_steps", "augment_ramp_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"autoencoder_stage.{name} must be a non-negative integer, got {value!r}")

    def augment_strength(self, step: int) -> float:
        """Share of the configured augmentation strengths at 0-based ``step`` (the curriculum above)."""
        if step < self.augment_clean_steps:
            return 0.0
        if self.augment_ramp_steps == 0:
            return 1.0
        return min(1.0, (step - self.augment_clean_steps + 1) / self.augment_ramp_steps)


@dataclass
class DiffusionStage:
    data: DataConfig                  # texts to generate (unconditional); unused by this stage when pairs is set
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    ema_decay: float = 0.9999
    self_cond_prob: float = 0.5
    sample_count: int = 4         # samples logged at each evaluation (conditional: for held-out prompts)
    # Prompt-conditioned training (method: "Conditional tasks"): set = train on (source, target) pairs.
    pairs: PairDataConfig | None = None
    source_drop_prob: float = 0.1  # classifier-free guidance: share of rows trained with the null source
    # An existing autoencoder pipeline folder to use instead of <run_dir>/autoencoder/pipeline.
    autoencoder_from: str | None = None
    # A pipeline folder (or hub id) whose denoiser starts this run (its latent statistics are this run's
    # own); its architecture must be the one this config builds.
    init_from: str | None = None

    def __post_init__(self) -> None:
        _check_folder("diffusion_stage.init_from", self.init_from)
        if not (isinstance(self.ema_decay, float) and 0.0 <= self.ema_decay < 1.0):
            raise ConfigError(f"ema_decay must be a float in [0, 1), got {self.ema_decay!r}")
        if not (isinstance(self.self_cond_prob, (int, float)) and 0.0 <= self.self_cond_prob <= 1.0):
            raise ConfigError(f"self_cond_prob must be in [0, 1], got {self.self_cond_prob!r}")
        if not (isinstance(self.source_drop_prob, (int, float)) and not isinstance(self.source_drop_prob, bool)
                and 0.0 <= self.source_drop_prob <= 1.0):
            raise ConfigError(f"source_drop_prob must be in [0, 1], got {self.source_drop_prob!r}")
        _check_folder("diffusion_stage.autoencoder_from", self.autoencoder_from)


@dataclass
class ArStage:
    data: DataConfig | None = None   # None: the diffusion stage's data (the same windows Cosmos generates)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    sample_count: int = 4            # samples logged at each evaluation


@dataclass
class TrainConfig:
    run_dir: str
    autoencoder_stage: AutoencoderStage
    diffusion_stage: DiffusionStage
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    ar: ArModelConfig = field(default_factory=ArModelConfig)
    ar_stage: ArStage = field(default_factory=ArStage)
    seed: int = 0
    mixed_precision: str = "no"   # accelerate: "no" | "bf16" | "fp16"
    preset: str = ""              # the preset's name, for logs and model cards
    cache_dir: str | None = None  # windows + frozen features; None = <run_dir>/cache (share it across runs)

    def __post_init__(self) -> None:
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"mixed_precision must be 'no', 'bf16' or 'fp16', got {self.mixed_precision!r}")
        if self.denoiser.source_dim is not None and self.diffusion_stage.pairs is None:
            raise ConfigError("denoiser.source_dim is set but diffusion_stage.pairs is not: a prompt-conditioned "
                              "denoiser trains on pairs (source_dim itself is taken from the encoder)")

    @property
    def conditional(self) -> bool:
        """True when the diffusion stage trains a prompt-conditioned denoiser (on pairs)."""
        return self.diffusion_stage.pairs is not None

    # --- where a run's outputs are: the stages write them, train.export and bench/ read them -----------
    @property
    def path(self) -> Path:
        return Path(self.run_dir)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.path / "cache"

    @property
    def autoencoder_stage_dir(self) -> Path:
        """Stage 1 (train.autoencoder): ``state/``, ``metrics.jsonl`` and its pipeline (:attr:`autoencoder_dir`)."""
        return self.path / "autoencoder"

    @property
    def autoencoder_dir(self) -> Path:
        """The autoencoder pipeline folder the later stages read (stage 1's, or ``autoencoder_from``)."""
        if self.diffusion_stage.autoencoder_from is not None:
            return Path(self.diffusion_stage.autoencoder_from)
        return self.autoencoder_stage_dir / "pipeline"

    @property
    def latents_dir(self) -> Path:
        """Stage 2 (train.latent_stats): the diffusion data's latents and their statistics."""
        return self.path / "latents"

    @property
    def diffusion_stage_dir(self) -> Path:
        """Stage 3 (train.diffusion): ``state/`` and ``metrics.jsonl``."""
        return self.path / "diffusion"

    @property
    def pipeline_dir(self) -> Path:
        """The complete pipeline (EMA denoiser) stage 3 writes, which train.export exports."""
        return self.path / "pipeline"

    @property
    def ar_stage_dir(self) -> Path:
        """The AR baseline's training (train.ar): ``state/`` and ``metrics.jsonl``."""
        return self.path / "ar_train"

    @property
    def ar_model_dir(self) -> Path:
        """The trained AR baseline, a :class:`cosmos.ar_lm.ArLanguageModel` folder."""
        return self.path / "ar"

    @property
    def autoencoder_log(self) -> Path:
        return self.autoencoder_stage_dir / "metrics.jsonl"

    @property
    def diffusion_log(self) -> Path:
        return self.diffusion_stage_dir / "metrics.jsonl"

    @property
    def ar_log(self) -> Path:
        return self.ar_stage_dir / "metrics.jsonl"


_NESTED = {
    TrainConfig: {"autoencoder_stage": AutoencoderStage, "diffusion_stage": DiffusionStage,
                  "autoencoder": AutoencoderConfig, "denoiser": DenoiserConfig, "schedule": ScheduleConfig,
                  "sampling": SamplingConfig, "ar": ArModelConfig, "ar_stage": ArStage},
    ArStage: {"data": DataConfig, "optim": OptimConfig, "loop": LoopConfig},
    AutoencoderStage: {"data": DataConfig, "optim": OptimConfig, "loop": LoopConfig},
    DiffusionStage: {"data": DataConfig, "optim": OptimConfig, "loop": LoopConfig, "pairs": PairDataConfig},
}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a table, got {type(values).__name__}")
    values = dict(values)
    for key, sub in _NESTED.get(cls, {}).items():
        if key in values:
            values[key] = _build(sub, values[key], f"{where}.{key}")
    try:
        return config_from_dict(cls, values, where=where)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from err


def _apply_override(tree: dict[str, Any], assignment: str) -> None:
    """``a.b.c=value`` with value parsed as JSON when it parses (numbers, true, lists), else a string."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    *parents, leaf = key.strip().split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part} is not a table")
    node[leaf] = value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, tables merged key by key (lists and values replaced whole)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read_tree(path: str | Path, seen: tuple[Path, ...] = ()) -> tuple[Path, dict[str, Any]]:
    """A preset's TOML as a dict, with its ``base`` preset (if any) merged underneath."""
    path = Path(path)
    if not path.suffix and not path.exists():
        path = Path(__file__).parent / "configs" / f"{path}.toml"
    if not path.is_file():
        presets = sorted(p.stem for p in (Path(__file__).parent / "configs").glob("*.toml"))
        raise ConfigError(f"config file {path} not found; presets: {presets}")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: base presets form a cycle: {[p.name for p in seen]}")
    try:
        tree = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from err
    base = tree.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: base must be a preset name or path, got {base!r}")
        tree = _merge(_read_tree(base, seen + (path.resolve(),))[1], tree)
        tree.pop("preset", None)
    return path, tree


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a preset TOML (``train/configs/<name>.toml`` or a path), apply ``--set`` overrides."""
    path, tree = _read_tree(path)
    tree.setdefault("preset", path.stem)
    for assignment in overrides or []:
        _apply_override(tree, assignment)
    return _build(TrainConfig, tree, str(path))


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
