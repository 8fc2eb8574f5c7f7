"""A checkpoint's model-card facts as data: what training logged, read the same way by train/, bench/ and app/.

Training stages append one JSON object per line to ``<stage dir>/metrics.jsonl`` (``train.loop.MetricsLog``):
a ``{"event": "start", ...}`` record, step records (``loss``, ``lr``, ``minutes``) and ``{"event": "eval", ...}``
records with held-out figures.

``train.export`` gathers those records and its own measurements into a ``ModelCard`` and saves it as
``card.json`` next to the weights, with ``README.md`` rendered from it (``ModelCard.to_markdown``). Readers
(the app's About tab) load ``card.json``; nothing parses the README back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path

CARD_FILE = "card.json"
SCHEMA = 1          # card.json's format; a reader refuses another
TABLE_ROWS = 12     # curve rows a README shows (evenly spaced evaluations; card.json keeps them all)

# Hub metadata (the README's YAML front matter, https://huggingface.co/docs/hub/model-cards).
LIBRARY_NAME = "cosmos-playground"
TAGS = ["text-diffusion", "latent-diffusion", "cosmos", "safetensors"]
HUB_DATASETS = {"tinystories": "roneneldan/TinyStories"}   # data folder -> its hub dataset id (its SOURCE.md)
WEIGHTS_LICENSE = "apache-2.0"


class CardError(ValueError):
    """A card.json that cannot be read: the message names the file and the field that is wrong."""


def read_metrics_log(path: str | Path) -> list[dict]:
    """The records of a stage's ``metrics.jsonl`` in order; [] when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- the card's parts ----------------------------------------------------------------------------
@dataclass
class CurvePoint:
    """One evaluation during training."""

    step: int
    minutes: float                 # training wall time when it was logged
    values: dict[str, float]       # every number the evaluation logged, e.g. {"val_accuracy": 0.69}


@dataclass
class DataSource:
    """A training data file (or dataset id) and how the stage used it."""

    path: str
    note: str | None = None        # e.g. "first 6000 texts", "source = first 1 sentence(s), target = the rest"


@dataclass
class Stage:
    """What one training stage did: data, length, optimiser settings and its evaluation curve."""

    name: str                      # "autoencoder" or "diffusion"
    data: list[DataSource]
    steps: int
    batch_size: int
    minutes: float                 # wall time of the last logged step
    peak_lr: float                 # AdamW, after warmup
    lr_schedule: str               # the LR schedule after warmup: "cosine", "constant", ...
    ema_decay: float | None        # EMA of the weights sampled from (the denoiser), None if not used
    init_from: str | None          # weights this run continued from: its steps, minutes and curve are the continuation's
    curve_metric: str              # the evaluation value the card tabulates and the app plots
    curve_caption: str             # what that value is, in words
    curve: list[CurvePoint]

    def curve_values(self) -> tuple[list[int], list[float]]:
        """(steps, values of ``curve_metric``) of the curve, for a plot."""
        return [p.step for p in self.curve], [p.values[self.curve_metric] for p in self.curve]


@dataclass
class HeldOut:
    """Token reconstruction accuracy of the exported autoencoder on one data source's test split."""

    data: str
    windows: int
    accuracy: float


@dataclass
class Target:
    """The held-out accuracy a checkpoint should reach on one data source (in-domain)."""

    data: str                      # a ``HeldOut.data``
    accuracy: float


@dataclass
class Sample:
    """A seeded sample of the exported pipeline, verbatim; ``prompt`` is None for an unconditional model."""

    seed: int
    text: str
    prompt: str | None = None


@dataclass
class ModelCard:
    """Everything a checkpoint's model card says, as data (``card.json``); ``to_markdown`` renders README.md."""

    name: str                      # the card's title: the exported folder's name
    preset: str                    # the training preset
    path: str                      # where it was exported (what the README's load line names)
    properties: dict[str, str]     # the summary table: property -> value, in order
    licenses: str                  # data origin and licenses, in words
    stages: list[Stage]
    machine: str                   # what it was trained on
    optimizer: str
    compression: int               # tokens per latent vector (L / N)
    reconstruction: list[HeldOut]
    target: Target | None
    limitations: str | None        # what a user should expect to go wrong, in words
    guidance_scale: float | None   # the default classifier-free guidance scale of the prompted samples
    samples: list[Sample]
    reproduce: list[str]           # the shell commands (and comments) that made it
    measured_on: str               # ISO date of the export's measurements
    schema: int = SCHEMA
    encoder: str | None = None     # the frozen encoder as configured (a hub id, a folder, or the offline package)
    license: str = WEIGHTS_LICENSE  # the weights' license (Hub identifier); ``licenses`` says why
    # A folder made from someone else's weights rather than trained here: "official-cosmos" for the authors'
    # release converted by ``python -m train.convert_official`` (``train.push`` makes such a repo private).
    origin: str | None = None
    provenance: str | None = None  # where such weights come from and whom to cite, in words
    reported: dict[str, str] = dataclasses.field(default_factory=dict)  # their authors' figures, not measured here

    def __post_init__(self) -> None:
        if self.schema != SCHEMA:
            raise CardError(f"schema {self.schema} is not this version's card format ({SCHEMA}); re-export the "
                            "checkpoint with this repository's `python -m train.export`")
        for stage in self.stages:
            for point in stage.curve:
                if stage.curve_metric not in point.values:
                    raise CardError(f"stage {stage.name!r}: the curve point at step {point.step} has no "
                                    f"{stage.curve_metric!r} (its curve_metric)")
        if self.target is not None and self.target.data not in {r.data for r in self.reconstruction}:
            raise CardError(f"target: {self.target.data!r} is not one of the reconstruction rows' data")
        prompted = {s.prompt is not None for s in self.samples}
        if len(prompted) > 1:
            raise CardError("samples: some have a prompt and some do not")
        if prompted == {True} and self.guidance_scale is None:
            raise CardError("samples have prompts but guidance_scale is null")

    @property
    def prompted(self) -> bool:
        return any(s.prompt is not None for s in self.samples)

    # --- card.json ---------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``card.json`` into ``folder`` (next to the weights); returns its path."""
        path = Path(folder) / CARD_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ModelCard | None:
        """The card in ``folder``'s ``card.json``; None if there is none. A file that is not valid JSON or not
        a card of this format raises CardError naming the file and what is wrong."""
        path = Path(folder) / CARD_FILE
        if not path.is_file():
            return None
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise CardError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
        except json.JSONDecodeError as err:
            raise CardError(f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
        try:
            return _build(cls, value, "card")
        except CardError as err:
            raise CardError(f"{path}: {err}") from None

    # --- README.md -----------------------------------------------------------------------------------
    def data_folders(self) -> list[str]:
        """The data folders the stages read (``.../<folder>/train.jsonl`` -> ``<folder>``), in order."""
        names = [Path(d.path).parent.name for stage in self.stages for d in stage.data]
        return list(dict.fromkeys(names))

    def hub_metadata(self):
        """The Hub's model-card metadata (``huggingface_hub.ModelCardData``): license, library, tags, the
        datasets that have a hub id, the frozen encoder as base model, and the card's own held-out
        reconstruction accuracies as model-index results."""
        from huggingface_hub import EvalResult, ModelCardData

        from .encoder import encoder_hub_id

        results = [EvalResult(task_type="text-generation", task_name="token reconstruction (autoencoder)",
                              dataset_type=HUB_DATASETS.get(r.data, r.data), dataset_name=r.data, dataset_split="test",
                              metric_type="accuracy", metric_name="held-out token reconstruction accuracy",
                              metric_value=r.accuracy)
                   for r in self.reconstruction]
        datasets = [HUB_DATASETS[name] for name in self.data_folders() if name in HUB_DATASETS]
        base_model = encoder_hub_id(self.encoder) if self.encoder else None
        return ModelCardData(license=self.license, library_name=LIBRARY_NAME, tags=TAGS, pipeline_tag="text-generation",
                             datasets=datasets or None, base_model=base_model, model_name=self.name,
                             eval_results=results or None)

    def to_markdown(self) -> str:
        """The README.md of the checkpoint folder: Hub metadata (YAML front matter), then the card."""
        if self.origin is not None:
            return self._converted_markdown()
        intro = (f"A [Cosmos](https://arxiv.org/abs/2506.21170) latent text diffusion pipeline trained with this\n"
                 f"repository's `train/` (preset `{self.preset}`). Load it with\n"
                 f"`CosmosPipeline.from_pretrained(\"{self.path}\")`; it runs offline on a CPU.")
        blocks = [f"# {self.name}", intro, _table(["property", "value"], "|---|---|", list(self.properties.items())),
                  self.data_markdown(), self.training_markdown(), self.results_markdown(), self.samples_markdown(),
                  self.reproduce_markdown()]
        return f"---\n{self.hub_metadata().to_yaml()}\n---\n\n" + "\n\n".join(blocks) + "\n"

    def _converted_markdown(self) -> str:
        """The README of a folder converted from weights trained elsewhere: provenance, their authors'
        figures (not measured here), what was measured here, and how it was made."""
        intro = (f"The weights of a [Cosmos](https://arxiv.org/abs/2506.21170) model trained by others (origin "
                 f"`{self.origin}`), converted to this repository's format. Load it with\n"
                 f"`CosmosPipeline.from_pretrained(\"{self.path}\")`; it runs offline on a CPU.")
        blocks = [f"# {self.name}", intro, _table(["property", "value"], "|---|---|", list(self.properties.items())),
                  "## Provenance and license\n" + "\n\n".join(x for x in (self.provenance, self.licenses) if x)]
        if self.reported:
            blocks.append("## Figures reported by the weights' authors (not measured here)\n"
                          + _table(["claim", "value"], "|---|---|", list(self.reported.items())))
        if self.limitations:
            blocks.append(f"**Limitations.** {self.limitations}")
        if self.samples:
            blocks.append(self.samples_markdown())
        blocks.append(self.reproduce_markdown())
        return f"---\n{self.hub_metadata().to_yaml()}\n---\n\n" + "\n\n".join(blocks) + "\n"

    def data_markdown(self, level: int = 2) -> str:
        """Data and licenses: each stage's sources, then the licenses."""
        lines = [f"- {stage.name.capitalize()}: " + ", ".join(f"`{s.path}`" + (f" ({s.note})" if s.note else "")
                                                          for s in stage.data) + "."
                 for stage in self.stages]
        return "\n".join([_heading(level, "Data and licenses"), *lines, f"- {self.licenses}"])

    def training_markdown(self, level: int = 2, curve_tables: bool = True) -> str:
        """Training: steps, batch and minutes per stage, machine and optimiser, continuation notes, and (with
        ``curve_tables``) each stage's curve as a table of at most ``TABLE_ROWS`` rows."""
        rows = [(s.name, s.steps, s.batch_size, f"{s.minutes:.1f}") for s in self.stages]
        blocks = [_heading(level, "Training") + "\n" + _table(["stage", "steps", "batch", "wall time (min)"],
                                                              "|---|---:|---:|---:|", rows)]
        ema = next((s.ema_decay for s in self.stages if s.ema_decay is not None), None)
        blocks.append(f"Training machine: {self.machine}. Optimiser: {self.optimizer}, peak LR "
                      + " /\n".join(f"{s.peak_lr} ({s.name})" for s in self.stages) + ", warmup then "
                      + " / ".join(s.lr_schedule for s in self.stages) + (f"; EMA {ema}." if ema is not None else "."))
        blocks += [f"The {s.name} stage started from the weights in `{s.init_from}` (`init_from`) and trained on: "
                   "the steps, minutes and curves here are this continuation's; the starting checkpoint's "
                   "own card gives its training." for s in self.stages if s.init_from is not None]
        if curve_tables:
            for stage in self.stages:
                blocks += [f"{stage.curve_caption}:", _curve_table(stage)]
        return "\n\n".join(blocks)

    def results_markdown(self, level: int = 2) -> str:
        """Held-out reconstruction accuracy of the exported folder, the target, and the limitations."""
        rows = [(r.data, r.windows, f"{r.accuracy:.4f}") for r in self.reconstruction]
        blocks = [_heading(level, f"Held-out reconstruction accuracy ({self.compression}x compression, test splits, "
                                  "this exported folder)") + "\n"
                  + _table(["data", "windows", "token accuracy"], "|---|---:|---:|", rows)]
        if self.target is not None:
            reached = next(r.accuracy for r in self.reconstruction if r.data == self.target.data)
            verdict = ("met" if reached >= self.target.accuracy
                       else f"missed by {self.target.accuracy - reached:.3f}")
            blocks.append(f"**Target** (>= {self.target.accuracy} in-domain): {verdict}.")
        if self.limitations:
            blocks.append(f"**Limitations.** {self.limitations}")
        return "\n\n".join(blocks)

    def samples_markdown(self, level: int = 2) -> str:
        """The seeded samples, verbatim, with the call that made them."""
        if self.prompted:
            return (_heading(level, "Prompted samples") + "\n`pipe.generate(prompt=PROMPT, seed=SEED)` with the "
                    f"defaults above (guidance scale {self.guidance_scale}), prompts written for this card, copied "
                    "verbatim:\n\n" + _table(["seed", "prompt", "continuation"], "|---:|---|---|",
                                             [(s.seed, s.prompt, s.text) for s in self.samples]))
        return (_heading(level, "Unconditional samples") + "\n`pipe.generate(1, seed=SEED)` with the defaults above, "
                "copied verbatim:\n\n" + _table(["seed", "text"], "|---:|---|",
                                                [(s.seed, s.text) for s in self.samples]))

    def reproduce_markdown(self, level: int = 2) -> str:
        """The commands that made the checkpoint, and the date of its measurements."""
        return "\n".join([_heading(level, "Reproduce"), "```bash", *self.reproduce, "```",
                          f"Measured on {self.measured_on}."])


# --- markdown helpers ----------------------------------------------------------------------------------
def _heading(level: int, text: str) -> str:
    return "#" * level + " " + text


def _cell(value: object) -> str:
    """A table cell: a '|' would end the cell and a newline the row."""
    return str(value).replace("|", "&#124;").replace("\n", " ")


def _table(header: list[str], rule: str, rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _curve_table(stage: Stage) -> str:
    points = stage.curve
    if not points:
        return "(no evaluations logged)"
    if len(points) > TABLE_ROWS:
        points = [points[i * (len(points) - 1) // (TABLE_ROWS - 1)] for i in range(TABLE_ROWS)]
    rows = [(p.step, f"{p.minutes:.1f}", f"{p.values[stage.curve_metric]:.4f}") for p in points]
    return _table(["step", "minutes", stage.curve_metric], "|---:|---:|---:|", rows)


# --- card.json validation ---------------------------------------------------------------------------------
def _kind(value: object) -> str:
    return "null" if value is None else {bool: "true/false", int: "a number", float: "a number", str: "text",
                                         list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _build(tp: object, value: object, where: str):
    """``value`` (parsed JSON) as type ``tp`` (a dataclass, list[...], dict[str, ...], X | None, str, int,
    float); raises CardError naming ``where`` (the field's path) and what was expected."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise CardError(f"{where}: expected an object, got {_kind(value)}")
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise CardError(f"{where}: unknown field(s) {', '.join(unknown)}")
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = _build(hints[name], value[name], f"{where}.{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise CardError(f"{where}: missing field {name!r}")
        try:
            return tp(**kwargs)
        except CardError as err:
            raise CardError(f"{where}: {err}") from None
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _build(inner, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise CardError(f"{where}: expected a list, got {_kind(value)}")
        (inner,) = typing.get_args(tp)
        return [_build(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise CardError(f"{where}: expected an object, got {_kind(value)}")
        _, inner = typing.get_args(tp)
        return {k: _build(inner, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    expected = {float: "a number", int: "a whole number", str: "text"}.get(tp, str(tp))
    raise CardError(f"{where}: expected {expected}, got {_kind(value)} {json.dumps(value)[:40]}")

