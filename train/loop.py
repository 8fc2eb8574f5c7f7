"""What both training stages share: batch order, optimiser, resumable state, EMA, metrics log.

Resumable state is safetensors + JSON (no pickle): model (and EMA) weights, the AdamW moments,
and the RNG state, written atomically every ``save_every`` steps. The batch order is a pure
function of (seed, step), so an interrupted run resumed from its last state continues exactly
as the uninterrupted run would have.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .config import OptimConfig


def batch_indices(num_items: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices of the batch at ``step``: epoch e walks a permutation seeded by (seed, e)."""
    per_epoch = max(1, num_items // batch_size)
    epoch, offset = divmod(step, per_epoch)
    order = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    if num_items < batch_size:  # tiny data: sample with repetition
        return order[torch.arange(batch_size) % num_items]
    return order[offset * batch_size:(offset + 1) * batch_size]


def make_optimizer(model: torch.nn.Module, optim: OptimConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=optim.lr, betas=optim.betas, eps=optim.eps,
                             weight_decay=optim.weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class EMA:
    """Exponential moving average of a model's floating-point parameters (used for sampling)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].lerp_(v.float(), 1.0 - self.decay)
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


def save_state(folder: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               ema: EMA | None = None, extra: dict[str, Any] | None = None) -> None:
    """Write ``folder`` atomically (a temp folder renamed over it), so a kill mid-save loses nothing."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    save_file({k: v.cpu() for k, v in opt_tensors.items()}, str(tmp / "optimizer.safetensors"))
    if ema is not None:
        save_file({k: v.contiguous() for k, v in ema.shadow.items()}, str(tmp / "ema.safetensors"))
    save_file({"torch": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    meta = {"step": step, "optimizer": opt_meta, **(extra or {})}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def load_state(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               ema: EMA | None = None) -> dict[str, Any]:
    """Restore what :func:`save_state` wrote; returns its JSON (``step`` = steps already done)."""
    meta = json.loads((folder / "state.json").read_text())
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    optimizer.load_state_dict(_optimizer_from_tensors(load_file(str(folder / "optimizer.safetensors")),
                                                      meta.pop("optimizer")))
    if ema is not None:
        ema.shadow = load_file(str(folder / "ema.safetensors"))
    torch.set_rng_state(load_file(str(folder / "rng.safetensors"))["torch"])
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

