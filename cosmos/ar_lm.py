"""The autoregressive baseline (issue 5): a Llama-style decoder-only LM over the frozen encoder's tokenizer.

A model folder holds ``model.safetensors`` + ``config.json`` (transformers' ``LlamaForCausalLM``),
``vocab.safetensors`` (the original token id of each row of the cut vocabulary) and ``ar.json`` (the
encoder whose tokenizer it uses, the window length); ``python -m train.ar`` writes one and
:class:`ArLanguageModel` loads it. Generation uses transformers' ``generate`` with its KV cache, pure
ancestral sampling (temperature 1, no top-k/p), the same way Cosmos samples without truncation.

The LM reads the windows Cosmos generates, ``[CLS] tokens [SEP] [PAD]...`` of L tokens
(:mod:`cosmos.windows`), and predicts the next token at every non-pad position. Generation starts
from ``[CLS]`` and stops at ``[SEP]``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

from .checkpoint import CheckpointError, count_parameters
from .config import ConfigError
from .encoder import FrozenEncoder


@dataclass
class ArModelConfig:
    """The autoregressive baseline (issue 5): a Llama-style decoder-only LM (RoPE, SwiGLU, RMSNorm, tied
    embeddings) over the frozen encoder's tokenizer, its vocabulary cut to the tokens seen in training."""

    num_layers: int = 8
    hidden: int = 384
    num_heads: int = 6
    ffn_hidden: int = 1024
    max_positions: int = 256      # RoPE table size; training uses autoencoder.max_length

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"ar.{f.name} must be a positive integer, got {value!r}")
        if self.hidden % self.num_heads:
            raise ConfigError(f"ar.hidden ({self.hidden}) must be divisible by ar.num_heads ({self.num_heads})")


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
        return count_parameters(self.model)

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
