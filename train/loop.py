"""The one training loop every stage runs, and what it rests on: batch order, optimiser, resumable
state, EMA, metrics log.

A stage (``train.autoencoder``, ``train.diffusion``, ``train.ar``) builds its data and model, then hands
the loop a :class:`Stage`: the model, how many training examples there are, and four functions: its
``batch`` (indices -> tensors), its ``loss`` on a batch, its ``evaluate`` and its ``save_artefacts``.
:func:`run` is the loop, read top to bottom (nanoGPT's ``train.py``)::

    resume     the saved state (weights, AdamW moments, EMA, RNG), if it was made for this config and inputs
    for step:  batch = stage.batch(batch_indices(step));  lr = optim.lr_at(step)
               loss = stage.loss(model, batch) under autocast; backward; clip; AdamW step; EMA update
               every log_every: a metrics line | eval_every: stage.evaluate() | save_every: the state
    then       stage.save_artefacts(): what the next stage reads (a pipeline folder, a model folder)

Resumable state is safetensors + JSON (no pickle): model (and EMA) weights, the AdamW moments,
the RNG states and a fingerprint of the config and inputs, written atomically every ``save_every``
steps. The batch order is a pure function of (seed, step), so an interrupted single-process run
resumed from its last state continues exactly as the uninterrupted run would have; a state made
for another config or other inputs is refused (``--restart`` starts over).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, load_model, save_file, save_model
from tqdm.auto import tqdm

from .config import LoopConfig, OptimConfig, TrainConfig


class StepOutput(NamedTuple):
    """What a stage's ``loss`` returns for one batch."""

    loss: torch.Tensor               # scalar, backpropagated
    logged: dict[str, torch.Tensor]  # more scalars for the metrics line, after ``loss`` (e.g. ce, mse, accuracy)
    count: int                       # what this process's batch adds to the throughput (tokens or samples)


@dataclass
class Stage:
    """A training stage as the loop sees it. The functions close over the stage's data and model."""

    name: str                        # "autoencoder" | "diffusion" | "AR": messages, progress bar
    folder: Path                     # the stage folder: its resumable state is ``folder/state``
    log: Path                        # its metrics.jsonl
    model: torch.nn.Module           # on the device, initialised (fresh, init_from or probe head)
    optim: OptimConfig
    loop: LoopConfig
    num_items: int                   # training examples the batch order walks
    fingerprint: dict[str, Any]      # what a saved state must have been made with to be resumed
    batch: Callable[[torch.Tensor], Any]                 # indices (b,) of this process -> its batch
    loss: Callable[[torch.nn.Module, Any], StepOutput]   # (prepared model, batch) -> loss, logged, count
    evaluate: Callable[[], tuple[dict[str, Any], str]]   # -> fields of the eval record, a one-line summary
    save_artefacts: Callable[[], None]                   # after the last step, on the main process
    start_record: dict[str, Any] = field(default_factory=dict)  # more fields of the step-0 "start" record
    ema: EMA | None = None           # updated after every optimiser step, saved with the state
    before_step: Callable[[int], None] | None = None     # called with the 0-based step before its loss
    rate: str = "tokens_per_s"       # the metrics line's throughput key: what StepOutput.count counts, per second


def start_accelerator(cfg: TrainConfig, cpu: bool = False) -> Accelerator:
    """The stage's Accelerator, torch seeded with (seed + rank) before the stage builds its model:
    each process draws its own noise (augmentations, diffusion times, dropout)."""
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=cpu)
    torch.manual_seed(cfg.seed + accelerator.process_index)
    return accelerator


def fresh_start(folder: Path, restart: bool) -> bool:
    """True when the stage in ``folder`` starts at step 0 (no saved state, or ``--restart``): only then
    does it initialise its model from ``init_from`` or a probe head (a resumed run loads its own weights)."""
    return restart or find_state(folder / "state") is None


def run(cfg: TrainConfig, accelerator: Accelerator, stage: Stage, restart: bool = False) -> None:
    """Train ``stage`` up to ``stage.optim.steps`` steps, from its saved state unless ``restart``; then
    ``stage.save_artefacts()``. Logs, evaluates and saves on the main process only."""
    optim, loop, rank = stage.optim, stage.loop, accelerator.process_index

    # 1. the optimiser, and the saved state if there is one (made for this config and these inputs)
    optimizer = make_optimizer(stage.model, optim)
    saved, start = find_state(stage.folder / "state"), 0
    if saved is not None and not restart:
        start = load_state(saved, stage.model, optimizer, stage.ema, fingerprint=stage.fingerprint, rank=rank)["step"]
        print(f"resuming {stage.name} training at step {start}")
    model, optimizer = accelerator.prepare(stage.model, optimizer)   # model: wrapped when several processes run
    log = MetricsLog(stage.log, start) if accelerator.is_main_process else None
    if log is not None and start == 0:
        log.write(step=0, event="start", preset=cfg.preset, machine=machine_description(),
                  processes=accelerator.num_processes, **stage.start_record)

    # 2. the loop
    speed, began = Throughput(), time.perf_counter() - 60 * (log.minutes_done if log else 0.0)
    minutes = lambda: round((time.perf_counter() - began) / 60, 3)  # noqa: E731  (wall time, across resumes)
    model.train()
    bar = tqdm(range(start, optim.steps), initial=start, total=optim.steps, desc=stage.name.lower(), unit="step")
    for step in bar:
        idx = batch_indices(stage.num_items, optim.batch_size, step, cfg.seed)
        batch = stage.batch(idx[rank::accelerator.num_processes])   # this process's share
        set_lr(optimizer, optim.lr_at(step))
        if stage.before_step is not None:
            stage.before_step(step)
        with accelerator.autocast():
            out = stage.loss(model, batch)
        accelerator.backward(out.loss)
        accelerator.clip_grad_norm_(model.parameters(), optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if stage.ema is not None:
            stage.ema.update(stage.model)
        speed.add(out.count * accelerator.num_processes)            # all processes'
        done = step + 1
        if not accelerator.is_main_process:
            continue
        if done % loop.log_every == 0 or done == optim.steps:
            record = dict(step=done, loss=out.loss.item(), **{k: v.item() for k, v in out.logged.items()},
                          lr=optim.lr_at(step), **{stage.rate: round(speed.rate(), 1)}, minutes=minutes())
            log.write(**record)
            bar.set_postfix(loss=f"{record['loss']:.4f}",
                            **({"acc": f"{record['accuracy']:.3f}"} if "accuracy" in record else {}))
        if done % loop.eval_every == 0 or done == optim.steps:
            fields, summary = stage.evaluate()
            log.write(step=done, event="eval", **fields, minutes=minutes())
            tqdm.write(f"step {done}: {summary}")
        if done % loop.save_every == 0 or done == optim.steps:
            save_state(stage.folder / "state", done, stage.model, optimizer, stage.ema,
                       extra={"fingerprint": stage.fingerprint})

    # 3. what the stage leaves for the next
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        stage.save_artefacts()


# --- the loop's parts ---------------------------------------------------------------------------
def batch_indices(num_items: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices of the batch at ``step``: epoch e walks a permutation seeded by (seed, e)."""
    per_epoch = max(1, num_items // batch_size)
    epoch, offset = divmod(step, per_epoch)
    order = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    if num_items < batch_size:  # tiny data: sample with repetition
        return order[torch.arange(batch_size) % num_items]
    return order[offset * batch_size:(offset + 1) * batch_size]


def stage_fingerprint(cfg, **parts: Any) -> dict[str, Any]:
    """What a resumable state depends on (configs as plain JSON values, input digests, the seed)."""
    import dataclasses
    plain = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in parts.items()}
    return json.loads(json.dumps({**plain, "seed": cfg.seed}))


def machine_description() -> str:
    import platform
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{os.cpu_count()}-core {platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"


def make_optimizer(model: torch.nn.Module, optim: OptimConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=optim.lr, betas=optim.betas, eps=optim.eps,
                             weight_decay=optim.weight_decay)


def init_weights_from(model: torch.nn.Module, source: torch.nn.Module, keep: tuple[str, ...] = ()) -> None:
    """Start ``model`` from ``source``'s weights (a stage's ``init_from``: a longer schedule, or fine-tuning).

    Both must have the same architecture: a missing, extra or differently shaped tensor raises
    CheckpointError naming it. Entries named in ``keep`` (e.g. statistics this run measured on its own
    data) stay as they are in ``model``.
    """
    from cosmos.checkpoint import CheckpointError, check_state_dict

    state = {k: v for k, v in source.state_dict().items() if k not in keep}
    expected = {k: v for k, v in model.state_dict().items() if k not in keep}
    try:
        check_state_dict(expected, state, "init_from")
    except CheckpointError as err:
        raise CheckpointError(f"{err} (init_from must name a checkpoint of the architecture this config builds)") from None
    model.load_state_dict(state, strict=False)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class EMA:
    """Exponential moving average of a model's floating-point parameters (used for sampling).

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so a short run's average
    does not keep a noticeable share of the random initialisation (0.999^3000 would keep 5%).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.num_updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        self.num_updates += 1
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].lerp_(v.float(), 1.0 - decay)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model: torch.nn.Module) -> None:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()})


# --- resumable state ---------------------------------------------------------------------------
def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {f"{pid}.{name}": value.contiguous() for pid, entry in state["state"].items()
               for name, value in entry.items() if torch.is_tensor(value)}
    return tensors, {"param_groups": state["param_groups"]}


def _optimizer_from_tensors(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for group in meta["param_groups"]:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": meta["param_groups"]}


def save_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors written to a temp name and renamed, so a kill mid-write never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def file_digest(path: Path) -> str:
    """Content hash of a (weights or statistics) file, to tie a resumed state to its inputs."""
    import hashlib
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return state


def _set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    cuda = [state[f"cuda{i}"] for i in range(len(state)) if f"cuda{i}" in state]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_state(folder: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               ema: EMA | None = None, extra: dict[str, Any] | None = None, rank: int = 0) -> None:
    """Write ``folder`` atomically (a temp folder renamed over it), so a kill mid-save loses nothing.

    ``extra`` should hold a ``fingerprint`` (config + inputs) that :func:`load_state` checks.
    CPU and CUDA RNG states are saved for ``rank``; a resume is bit-exact for a single process. (With
    several processes only the main one saves, so the others resume with their seeded streams.)
    """
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))  # drops tied duplicates (an LM's head = its embedding)
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    save_file({k: v.cpu() for k, v in opt_tensors.items()}, str(tmp / "optimizer.safetensors"))
    if ema is not None:
        save_file({k: v.contiguous() for k, v in ema.shadow.items()}, str(tmp / "ema.safetensors"))
    save_file(_rng_state(), str(tmp / f"rng-{rank}.safetensors"))
    meta = {"step": step, "optimizer": opt_meta, "ema_updates": ema.num_updates if ema else None, **(extra or {})}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    old = folder.with_name(folder.name + ".old")
    if folder.exists():                 # keep exactly one complete state on disk at every moment:
        shutil.rmtree(old, ignore_errors=True)  # .old goes only when a newer complete ``folder`` exists
        os.replace(folder, old)
    os.replace(tmp, folder)             # (after a resume from .old there is no ``folder``: .old stays
    shutil.rmtree(old, ignore_errors=True)  # until the new state is in place)


def find_state(folder: Path) -> Path | None:
    """The saved state, or the previous one if a kill hit between the two renames of a save."""
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if (candidate / "state.json").is_file():
            return candidate
    return None


def load_state(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               ema: EMA | None = None, fingerprint: dict[str, Any] | None = None, rank: int = 0) -> dict[str, Any]:
    """Restore what :func:`save_state` wrote; returns its JSON (``step`` = steps already done).

    Raises CheckpointError if the state was written for another config or other inputs.
    """
    from cosmos.checkpoint import CheckpointError

    meta = json.loads((folder / "state.json").read_text())
    if fingerprint is not None and meta.get("fingerprint") != fingerprint:
        saved = meta.get("fingerprint") or {}
        changed = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
        raise CheckpointError(f"the saved state in {folder} was made with a different {', '.join(changed)}; "
                              "rerun with --restart to start this stage over")
    device = next(model.parameters()).device
    try:
        load_model(model, str(folder / "model.safetensors"), device=str(device))
        optimizer.load_state_dict(_optimizer_from_tensors(load_file(str(folder / "optimizer.safetensors")),
                                                          meta.pop("optimizer")))
        if ema is not None:
            ema.shadow = load_file(str(folder / "ema.safetensors"), device=str(device))
            ema.num_updates = meta.get("ema_updates") or 0
        rng = folder / f"rng-{rank}.safetensors"
        if rng.is_file():  # only the main process saves: other ranks keep their (seed + rank) streams
            _set_rng_state(load_file(str(rng)))
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(f"cannot resume from {folder} ({err}); rerun with --restart") from err
    return meta


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl``; on resume, drops lines past the resumed step.

    ``minutes_done`` is the training time already logged before a resume, so wall times accumulate.
    """

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if path.is_file() and resume_step > 0:
            kept = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            kept = [record for record in kept if record.get("step", 0) <= resume_step]
        self.minutes_done = max((r.get("minutes", 0.0) for r in kept), default=0.0)
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def write(self, **record: Any) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


class Throughput:
    """Tokens per second over the steps since the last call."""

    def __init__(self) -> None:
        self.start, self.tokens = time.perf_counter(), 0

    def add(self, tokens: int) -> None:
        self.tokens += tokens

    def rate(self) -> float:
        now = time.perf_counter()
        rate = self.tokens / max(now - self.start, 1e-9)
        self.start, self.tokens = now, 0
        return rate

