"""The autoregressive baseline (issue 5): a decoder-only LM trained on the same windows as Cosmos.

    python -m train.ar --config bench-ar            # resumes if a state exists

Writes ``<run_dir>/ar_train/`` (``state/``, ``metrics.jsonl``) and the model in ``<run_dir>/ar/``:
``model.safetensors`` + ``config.json`` (transformers' ``LlamaForCausalLM``), ``vocab.safetensors``
(the original token id of each row of the cut vocabulary) and ``ar.json`` (the encoder whose
tokenizer it uses, the window length). :class:`ArLanguageModel` loads it; generation uses
transformers' ``generate`` with its KV cache, pure ancestral sampling (temperature 1, no top-k/p),
the same way Cosmos samples without truncation.

The LM sees exactly the windows Cosmos is trained to generate, ``[CLS] tokens [SEP] [PAD]...`` of
``autoencoder.max_length`` tokens from the diffusion stage's data, and learns next-token prediction
on every non-pad position. Generation starts from ``[CLS]`` and stops at ``[SEP]``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import LlamaConfig, LlamaForCausalLM

from cosmos import FrozenEncoder
from cosmos.checkpoint import CheckpointError

from .autoencoder import head_vocabulary
from .cli import run_cli
from .config import ArModelConfig, TrainConfig
from .data import load_windows
from .loop import (MetricsLog, Throughput, batch_indices, find_state, load_state, machine_description,
                   make_optimizer, save_state, set_lr, stage_fingerprint)


class ArLanguageModel:
    """A trained (or freshly built) AR baseline: Llama LM + cut vocabulary + the encoder's tokenizer."""

    def __init__(self, model: LlamaForCausalLM, vocab: torch.Tensor, tokenizer, max_length: int, encoder: str):
        self.model, self.tokenizer, self.max_length, self.encoder_name = model.eval(), tokenizer, max_length, encoder
        self.vocab = vocab                                    # (V,) original token id of each LM row, sorted
        self.unk = int(torch.searchsorted(vocab, torch.tensor(tokenizer.unk_token_id)))  # specials are all in vocab

    # --- construction ----------------------------------------------------------------------------------
    @staticmethod
    def llama_config(cfg: ArModelConfig, vocab: torch.Tensor, tokenizer) -> LlamaConfig:
        lm = lambda token_id: int(torch.searchsorted(vocab, torch.tensor(token_id)))  # noqa: E731
        return LlamaConfig(vocab_size=len(vocab), hidden_size=cfg.hidden, intermediate_size=cfg.ffn_hidden,
                           num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
                           num_key_value_heads=cfg.num_heads, max_position_embeddings=cfg.max_positions,
                           tie_word_embeddings=True, bos_token_id=lm(tokenizer.cls_token_id),
                           eos_token_id=lm(tokenizer.sep_token_id), pad_token_id=lm(tokenizer.pad_token_id))

    @classmethod
    def build(cls, cfg: ArModelConfig, vocab: torch.Tensor, encoder: FrozenEncoder, encoder_name: str,
              max_length: int) -> "ArLanguageModel":
        vocab = vocab.sort().values
        model = LlamaForCausalLM(cls.llama_config(cfg, vocab, encoder.tokenizer))
        return cls(model, vocab, encoder.tokenizer, max_length, encoder_name)

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.model.save_pretrained(folder)   # config.json + model.safetensors
        save_file({"vocab": self.vocab.contiguous()}, str(folder / "vocab.safetensors"))
        (folder / "ar.json").write_text(json.dumps({"encoder": self.encoder_name, "max_length": self.max_length},
                                                   indent=1))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "ArLanguageModel":
        folder = Path(folder)
        for name in ("config.json", "model.safetensors", "vocab.safetensors", "ar.json"):
            if not (folder / name).is_file():
                raise CheckpointError(f"{folder} is not an AR baseline folder: {name} is missing; train it with "
                                      "`python -m train.ar --config bench-ar`")
        meta = json.loads((folder / "ar.json").read_text())
        encoder = FrozenEncoder.from_pretrained(meta["encoder"])
        vocab = load_file(str(folder / "vocab.safetensors"))["vocab"]
        model = LlamaForCausalLM.from_pretrained(folder)
        if model.config.vocab_size != len(vocab):
            raise CheckpointError(f"{folder}: config.json has vocab_size {model.config.vocab_size} but "
                                  f"vocab.safetensors lists {len(vocab)} tokens; re-export the model")
        return cls(model, vocab, encoder.tokenizer, int(meta["max_length"]), meta["encoder"])

    def to(self, device) -> "ArLanguageModel":
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # --- token ids -------------------------------------------------------------------------------------
    def to_lm_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Original token ids -> LM rows (ids outside the cut vocabulary -> [UNK])."""
        pos = torch.searchsorted(self.vocab, ids.clamp(max=int(self.vocab[-1])))
        known = self.vocab[pos] == ids
        return torch.where(known, pos, torch.full_like(pos, self.unk))

    def windows(self, texts: list[str]) -> torch.Tensor:
        """``[CLS] text [SEP] [PAD]...`` windows of ``max_length`` original token ids, (B, L)."""
        enc = self.tokenizer(texts, max_length=self.max_length, truncation=True, padding="max_length",
                             return_tensors="pt")
        return enc["input_ids"]

    # --- use -------------------------------------------------------------------------------------------
    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy over non-pad positions of original-id windows (B, L)."""
        ids = self.to_lm_ids(windows.to(self.device))
        mask = windows.to(self.device) != self.tokenizer.pad_token_id
        labels = ids.masked_fill(~mask, -100)
        return self.model(input_ids=ids, attention_mask=mask.long(), labels=labels).loss

    @torch.inference_mode()
    def perplexities(self, texts: list[str], batch_size: int = 64) -> list[float]:
        """exp(mean token NLL) of each text as a window (``[SEP]`` included, ``[CLS]`` as context)."""
        out = []
        for start in range(0, len(texts), batch_size):
            windows = self.windows(texts[start:start + batch_size]).to(self.device)
            ids, mask = self.to_lm_ids(windows), windows != self.tokenizer.pad_token_id
            logits = self.model(input_ids=ids, attention_mask=mask.long()).logits[:, :-1].float()  # (B, L-1, V)
            nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")              # (B, L-1)
            keep = mask[:, 1:].float()
            out += torch.exp((nll * keep).sum(1) / keep.sum(1).clamp(min=1)).tolist()
        return out

    @torch.inference_mode()
    def generate_ids(self, batch_size: int, length: int | None = None, seed: int = 0,
                     use_cache: bool = True, stop_at_sep: bool = True) -> torch.Tensor:
        """Sample ``batch_size`` sequences of up to ``length`` tokens ([CLS] included), (B, <=L) LM rows.

        ``stop_at_sep=False`` always generates ``length - 1`` new tokens (for timing at a fixed length)."""
        length = length or self.max_length
        cfg = self.model.config
        torch.manual_seed(seed)
        start = torch.full((batch_size, 1), cfg.bos_token_id, dtype=torch.long, device=self.device)
        return self.model.generate(start, attention_mask=torch.ones_like(start), do_sample=True, temperature=1.0,
                                   top_k=0, top_p=1.0, max_new_tokens=length - 1, min_new_tokens=0 if stop_at_sep
                                   else length - 1, eos_token_id=cfg.eos_token_id if stop_at_sep else None,
                                   pad_token_id=cfg.pad_token_id, use_cache=use_cache)

    def generate(self, batch_size: int, seed: int = 0) -> list[str]:
        """``batch_size`` texts sampled from the LM, detokenised like Cosmos's decoder output."""
        rows = self.generate_ids(batch_size, seed=seed)
        ids = self.vocab[rows.cpu()]
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True)


@torch.inference_mode()
def validation_loss(lm: ArLanguageModel, windows: torch.Tensor, batch_size: int = 64) -> float:
    was_training = lm.model.training
    lm.model.eval()
    total = sum(lm.loss(windows[s:s + batch_size]).item() * len(windows[s:s + batch_size])
                for s in range(0, len(windows), batch_size))
    lm.model.train(was_training)
    return total / len(windows)


def train_ar(cfg: TrainConfig, restart: bool = False, cpu: bool = False) -> Path:
    stage = cfg.ar_stage
    data = stage.data or cfg.diffusion_stage.data
    out_dir, model_dir = cfg.path / "ar_train", cfg.path / "ar"
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=cpu)
    device, rank = accelerator.device, accelerator.process_index
    torch.manual_seed(cfg.seed + rank)

    # 1. data: the windows Cosmos's diffusion stage uses
    encoder = FrozenEncoder.from_pretrained(cfg.autoencoder.encoder)
    L = cfg.autoencoder.max_length
    train_windows = load_windows(data, "train", encoder, L, cfg.cache_path)
    val_windows = load_windows(data, "validation", encoder, L, cfg.cache_path)
    val_windows = val_windows[torch.randperm(len(val_windows), generator=torch.Generator().manual_seed(0))]
    val_windows = val_windows[:stage.loop.eval_windows]

    # 2. model over the tokens seen in training
    lm = ArLanguageModel.build(cfg.ar, head_vocabulary(train_windows, encoder), encoder, cfg.autoencoder.encoder, L)
    lm.to(device)
    optimizer = make_optimizer(lm.model, stage.optim)
    fingerprint = stage_fingerprint(cfg, ar=cfg.ar, stage=stage, data=len(train_windows), max_length=L)
    start = 0
    saved = find_state(out_dir / "state")
    if saved is not None and not restart:
        start = load_state(saved, lm.model, optimizer, fingerprint=fingerprint, rank=rank)["step"]
        print(f"resuming AR training at step {start}")
    model, optimizer = accelerator.prepare(lm.model, optimizer)
    lm.model = accelerator.unwrap_model(model)
    log = MetricsLog(out_dir / "metrics.jsonl", start) if accelerator.is_main_process else None
    if log is not None and start == 0:
        log.write(step=0, event="start", preset=cfg.preset, machine=machine_description(),
                  processes=accelerator.num_processes, train_windows=len(train_windows),
                  val_windows=len(val_windows), params=lm.num_parameters(), vocab=len(lm.vocab))

    # 3. loop
    optim, loop = stage.optim, stage.loop
    speed, began = Throughput(), time.perf_counter() - 60 * (log.minutes_done if log else 0.0)
    lm.model.train()
    bar = tqdm(range(start, optim.steps), initial=start, total=optim.steps, desc="ar", unit="step")
    for step in bar:
        idx = batch_indices(len(train_windows), optim.batch_size, step, cfg.seed)
        idx = idx[accelerator.process_index::accelerator.num_processes]
        windows = train_windows[idx]
        set_lr(optimizer, optim.lr_at(step))
        with accelerator.autocast():
            loss = lm.loss(windows)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        speed.add(int((windows != encoder.tokenizer.pad_token_id).sum()) * accelerator.num_processes)
        done = step + 1
        if not accelerator.is_main_process:
            continue
        if done % loop.log_every == 0 or done == optim.steps:
            log.write(step=done, loss=loss.item(), lr=optim.lr_at(step), tokens_per_s=round(speed.rate(), 1),
                      minutes=round((time.perf_counter() - began) / 60, 3))
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if done % loop.eval_every == 0 or done == optim.steps:
            val = validation_loss(lm, val_windows)
            samples = lm.generate(stage.sample_count, seed=0)
            lm.model.train()
            log.write(step=done, event="eval", val_loss=val, val_perplexity=float(torch.exp(torch.tensor(val))),
                      samples=samples, minutes=round((time.perf_counter() - began) / 60, 3))
            tqdm.write(f"step {done}: held-out loss {val:.4f} | {samples[0][:80]!r}")
        if done % loop.save_every == 0 or done == optim.steps:
            save_state(out_dir / "state", done, lm.model, optimizer, extra={"fingerprint": fingerprint})

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        lm.model.cpu()
        lm.save_pretrained(model_dir)
        (model_dir / "train_config.json").write_text(json.dumps({"ar": asdict(cfg.ar), "preset": cfg.preset},
                                                                indent=1))
        print(f"AR baseline written to {model_dir}")
    return model_dir


def main(argv: list[str] | None = None) -> None:
    run_cli(argv, __doc__, lambda cfg, args: train_ar(cfg, restart=args.restart, cpu=args.cpu))


if __name__ == "__main__":
    main()
