"""The Cosmos autoencoder: frozen-encoder features (B, L, D) <-> N latent vectors (B, N, d).

Paper sections (see ../shared/docs/cosmos-method.md): "Compressor, a Perceiver resampler",
"Decoder", "Autoencoder training". The frozen encoder runs outside this module so its features
can be cached; this module starts from the encoder's raw last hidden state.

Two compressor / decoder pairs, chosen by ``AutoencoderConfig.compressor_type``:

- ``"perceiver"`` (the paper): N learned queries attend to all L token features; the decoder's
  canvas of L [MASK] tokens attends to the N latents. Any latent may hold any token's information.
- ``"chunk"`` (ours, not in the paper): latent i is an MLP of its own r = L / N consecutive token
  features, and the decoder maps latent i back to those r positions with the mirror MLP, then
  ``decoder_layers`` (k >= 0) transformer blocks mix the canvas before the token head. The frozen
  encoder's features are contextual, so a chunk still carries its context; what the compressor must
  learn is only a per-chunk code, which a 2-core CPU learns in minutes where the Perceiver's
  attention routing needs GPU-hours (measured: ../shared/docs/cpu-training-notes.md, 0.85 held-out
  token accuracy after 14 one-thread minutes vs 0.27 after 56 two-thread minutes). It also makes each
  latent *local*: latent i owns tokens [i r, (i + 1) r), which is what span infilling needs. The loss,
  normalisation, augmentations and latent dropout are the paper's; a dropped token's feature is zeroed
  (the chunk MLP has no attention mask to drop it from).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from torch import nn

from .config import AutoencoderConfig, ConfigError, saved_dict
from .layers import Attention, GeluFeedForward, Norm, rms_norm


def locality_bias(cfg: AutoencoderConfig) -> torch.Tensor | None:
    """(N, L) additive logits -b |i - p N / L| between latent i and token p, or None when b = 0."""
    if cfg.locality_bias == 0:
        return None
    N, L = cfg.num_latents, cfg.max_length
    token_coord = (torch.arange(L) + 0.5) * N / L - 0.5            # token p in latent units
    return -cfg.locality_bias * (torch.arange(N)[:, None] - token_coord[None, :]).abs()


def norm_factory(cfg: AutoencoderConfig) -> Norm:
    """The config's RMSNorm (kind and eps), as a width -> module factory."""
    return functools.partial(rms_norm, kind=cfg.norm_kind, eps=cfg.norm_eps)


def block_layers(cfg: AutoencoderConfig) -> tuple[Attention, GeluFeedForward]:
    """A block's attention (QK-norm) and FFN as the config builds them (made after the block's norms: the
    order of construction is the order of the parameters and of the seeded initialisation)."""
    return (Attention(cfg.width, cfg.head_dim, qk_norm=True, norm=norm_factory(cfg), separate_kv=cfg.separate_kv),
            GeluFeedForward(cfg.width, cfg.ffn_mult, cfg.dropout, bias=cfg.ffn_bias))


class CompressorBlock(nn.Module):
    """Latent attention (Q: latents; K, V: [latents ; tokens]) then an FFN, both residual."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        norm = norm_factory(cfg)
        self.norm_latents = norm(cfg.width)
        self.norm_tokens = norm(cfg.width)
        self.attn, self.ffn = block_layers(cfg)

    def forward(self, latents: torch.Tensor, tokens: torch.Tensor, key_mask: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_latents(latents)                           # (B, N, D)
        # keys and values: [latents ; tokens], (B, N + L, D)
        latents = latents + self.attn.read(q, self.norm_tokens(tokens), other_first=False, key_mask=key_mask,
                                           bias=bias)
        return latents + self.ffn(latents)


class Compressor(nn.Module):
    """Perceiver resampler: N learned queries read the L token features (method: "Compressor").

    Compression is along the sequence (L -> N); the width stays D unless ``latent_dim`` asks for a
    narrower latent, in which case a linear map D -> d precedes the output RMSNorm.
    """

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        D, N, L = cfg.width, cfg.num_latents, cfg.max_length
        self.queries = nn.Parameter(torch.randn(N, D) * 0.02)    # (N, D), N(0, 0.02) as in the paper
        self.token_pos = nn.Parameter(torch.randn(L, D) * 0.02)  # learned absolute positions
        norm = norm_factory(cfg)
        self.input_norm = norm(D)
        self.blocks = nn.ModuleList(CompressorBlock(cfg) for _ in range(cfg.compressor_layers))
        self.to_latent = nn.Linear(D, cfg.latent_width, bias=False) if cfg.latent_width != D else nn.Identity()
        self.out_norm = norm(cfg.latent_width)
        local = locality_bias(cfg)  # (N, L); latent-latent keys unbiased -> (N, N + L)
        self.register_buffer("attn_bias", None if local is None else
                             torch.cat([torch.zeros(N, N), local], dim=1), persistent=False)

    def forward(self, features: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """features: (B, L, D) normalised; token_mask: (B, L) bool -> latents (B, N, d)."""
        B = features.shape[0]
        tokens = features + self.token_pos                                    # (B, L, D)
        latents = self.input_norm(self.queries).expand(B, -1, -1)             # (B, N, D)
        latent_mask = torch.ones(B, latents.shape[1], dtype=torch.bool, device=features.device)
        key_mask = torch.cat([latent_mask, token_mask], dim=1)                # (B, N + L)
        for block in self.blocks:
            latents = block(latents, tokens, key_mask, self.attn_bias)
        return self.out_norm(self.to_latent(latents))                         # (B, N, d)


class DecoderBlock(nn.Module):
    """Canvas queries attend to [latents ; canvas] in one attention; FFN; gated residuals."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        norm = norm_factory(cfg)
        self.norm_canvas = norm(cfg.width)
        self.norm_latents = norm(cfg.width)
        self.attn, self.ffn = block_layers(cfg)
        self.attn_gate = nn.Parameter(torch.ones(cfg.width))
        self.ffn_gate = nn.Parameter(torch.ones(cfg.width))

    def forward(self, canvas: torch.Tensor, latents: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_canvas(canvas)                                      # (B, L, D)
        # keys and values: [latents ; canvas], (B, N + L, D)
        canvas = canvas + self.attn_gate * self.attn.read(q, self.norm_latents(latents), other_first=True, bias=bias)
        return canvas + self.ffn_gate * self.ffn(canvas)


class Decoder(nn.Module):
    """Non-autoregressive decoder: a canvas of L [MASK] tokens reads the latents in one pass.

    The paper embeds the canvas with the frozen encoder's word-embedding table, an FFN and a
    learned gate on "is [MASK]". Every canvas position holds [MASK] in training and at inference,
    so the only row of that frozen table ever read is [MASK]'s: we keep that row as a frozen
    buffer (``mask_embedding``) instead of a copy of the whole table (12M params for MiniLM).
    ``canvas = "residual"`` (ours) adds the embedding, its FFN and a learned offset; ``"gated"`` (the
    official code) scales the FFN alone by the mask gate, which is constant on an all-[MASK] canvas.
    Returns the final hidden state (B, L, D); the MSE alignment targets exactly this tensor.
    """

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        D, N, L = cfg.width, cfg.num_latents, cfg.max_length
        self.register_buffer("mask_embedding", torch.zeros(D))  # frozen; set from the encoder
        self.canvas_ffn = GeluFeedForward(D, cfg.ffn_mult, cfg.dropout, bias=cfg.ffn_bias)
        self.gated = cfg.canvas == "gated"
        if self.gated:
            self.canvas_gate = nn.Parameter(torch.ones(D))       # learned scale for "is [MASK]"
        else:
            self.mask_gate = nn.Parameter(torch.zeros(D))        # learned offset for "is [MASK]"
        self.canvas_pos = nn.Parameter(torch.randn(L, D) * 0.02)
        self.latent_pos = nn.Parameter(torch.randn(N, D) * 0.02)
        self.from_latent = nn.Linear(cfg.latent_width, D, bias=False) if cfg.latent_width != D else nn.Identity()
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.decoder_layers))
        local = locality_bias(cfg)  # canvas-canvas keys unbiased -> (L, N + L)
        self.register_buffer("attn_bias", None if local is None else
                             torch.cat([local.T, torch.zeros(L, L)], dim=1), persistent=False)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """latents: (B, N, d) -> hidden (B, L, D)."""
        B = latents.shape[0]
        latents = self.from_latent(latents) + self.latent_pos             # (B, N, D)
        if self.gated:
            token = self.canvas_ffn(self.mask_embedding) * self.canvas_gate                       # (D,)
        else:
            token = self.mask_embedding + self.canvas_ffn(self.mask_embedding) + self.mask_gate  # (D,)
        canvas = (token + self.canvas_pos).expand(B, -1, -1)              # (B, L, D)
        for block in self.blocks:
            canvas = block(canvas, latents, self.attn_bias)
        return canvas


class ChunkCompressor(nn.Module):
    """Latent i = RMSNorm(W2 GELU(W1 [h_{i r}; ...; h_{(i+1) r - 1}])): (B, L, D) -> (B, N, d)."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        D, N, r, H = cfg.width, cfg.num_latents, cfg.chunk_size, cfg.chunk_hidden
        self.num_latents = N
        self.token_pos = nn.Parameter(torch.randn(r, D) * 0.02)  # position within a chunk
        self.mlp = nn.Sequential(nn.Linear(r * D, H), nn.GELU(), nn.Linear(H, cfg.latent_width))
        self.out_norm = norm_factory(cfg)(cfg.latent_width)

    def forward(self, features: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """features: (B, L, D) normalised; token_mask: (B, L) bool (False = pad or dropped) -> (B, N, d)."""
        B, L, D = features.shape
        N = self.num_latents
        chunks = (features * token_mask[..., None]).view(B, N, L // N, D) + self.token_pos  # (B, N, r, D)
        return self.out_norm(self.mlp(chunks.reshape(B, N, -1)))                              # (B, N, d)


class ContextBlock(nn.Module):
    """Pre-norm bidirectional self-attention + FFN over the decoded canvas, gated residuals."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.norm = norm_factory(cfg)(cfg.width)
        self.attn, self.ffn = block_layers(cfg)
        self.attn_gate = nn.Parameter(torch.ones(cfg.width))
        self.ffn_gate = nn.Parameter(torch.ones(cfg.width))

    def forward(self, canvas: torch.Tensor) -> torch.Tensor:
        q = self.norm(canvas)                                             # (B, L, D)
        canvas = canvas + self.attn_gate * self.attn(q, q)
        return canvas + self.ffn_gate * self.ffn(canvas)


class ChunkDecoder(nn.Module):
    """Latent i -> its r canvas positions by the mirror MLP, + positions, k context blocks: (B, N, d) -> (B, L, D).

    Returns the final hidden state; the MSE alignment targets exactly this tensor, as for the Perceiver
    decoder. With k = 0 each latent decodes on its own, so its tokens depend on it alone.
    """

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        D, r, H, L = cfg.width, cfg.chunk_size, cfg.chunk_hidden, cfg.max_length
        self.mlp = nn.Sequential(nn.Linear(cfg.latent_width, H), nn.GELU(), nn.Linear(H, r * D))
        self.canvas_pos = nn.Parameter(torch.randn(L, D) * 0.02)
        self.blocks = nn.ModuleList(ContextBlock(cfg) for _ in range(cfg.decoder_layers))

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        B = latents.shape[0]
        canvas = self.mlp(latents).reshape(B, -1, self.canvas_pos.shape[1]) + self.canvas_pos  # (B, L, D)
        for block in self.blocks:
            canvas = block(canvas)
        return canvas


def _draw(fn, shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Random tensor from ``fn`` (rand / randn / randperm): on ``device`` from the global RNG, or
    from an explicit CPU ``generator`` (reproducible tests) and then moved."""
    if generator is None:
        return fn(*shape, device=device) if fn is torch.randperm else fn(shape, device=device)
    out = fn(*shape, generator=generator) if fn is torch.randperm else fn(shape, generator=generator)
    return out.to(device)


@dataclass
class AutoencoderOutput:
    loss: torch.Tensor        # CE + mse_weight * MSE, scalar
    ce: torch.Tensor          # token cross-entropy over non-pad positions
    mse: torch.Tensor         # alignment of decoder hidden state to clean normalised features
    accuracy: torch.Tensor    # token accuracy over non-pad positions
    latents: torch.Tensor     # (B, N, d), after augmentation of the input, before latent dropout


class CosmosAutoencoder(ModelMixin, ConfigMixin):
    """Compressor + decoder + token head, with the encoder's feature statistics as buffers.

    Build one for an encoder with :meth:`for_encoder`; load one with ``cosmos.checkpoint.load_component``.
    """

    config_name = "config.json"

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        if not config.is_built:
            missing = [f for f in ("hidden_size", "vocab_size", "pad_token_id", "cls_token_id", "sep_token_id",
                                   "mask_token_id", "unk_token_id") if getattr(config, f) is None]
            raise ConfigError(f"AutoencoderConfig lacks the encoder-derived field(s) {missing} (a saved "
                              "checkpoint always has them; for a new model use CosmosAutoencoder.for_encoder)")
        self.register_to_config(**saved_dict(config))
        self.cfg = config
        D, V = config.width, config.output_vocab_size
        self.register_buffer("feature_mean", torch.zeros(D))  # (D,) per-dim stats of encoder features
        self.register_buffer("feature_std", torch.ones(D))
        # head index -> tokenizer id; the identity for a full-vocabulary head
        head_ids = torch.arange(V) if config.head_vocab_size is None else torch.full((V,), config.unk_token_id)
        self.register_buffer("head_token_ids", head_ids.long())
        chunk = config.compressor_type == "chunk"
        self.compressor = ChunkCompressor(config) if chunk else Compressor(config)
        self.decoder = ChunkDecoder(config) if chunk else Decoder(config)
        self.head = nn.Linear(D, V, bias=False)  # no bias, no final norm (method: "Decoder")
        # share of the config's augmentation strengths applied in training (1 = as configured); a training
        # curriculum (train.config.AutoencoderStage.augment_strength) sets it each step. Not saved.
        self.augment_strength = 1.0

    @classmethod
    def for_encoder(cls, encoder, config: AutoencoderConfig) -> "CosmosAutoencoder":
        """Fill the encoder-derived config fields from ``encoder`` (a FrozenEncoder) and build."""
        config = dataclasses.replace(config, encoder=encoder.name_or_path, hidden_size=encoder.hidden_size,
                                     vocab_size=encoder.vocab_size, **encoder.special_token_ids())
        model = cls(config)
        if config.compressor_type == "perceiver":
            model.decoder.mask_embedding.copy_(encoder.mask_embedding())
        return model

    # --- statistics set from data -----------------------------------------------------------
    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-dimension encoder feature statistics, (D,) each (see cosmos.normalization)."""
        D = self.cfg.width
        if mean.shape != (D,) or std.shape != (D,) or not bool((std > 0).all()):
            raise ValueError(f"feature stats must be two (D={D},) tensors with std > 0")
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std)

    def set_head_vocabulary(self, token_ids: torch.Tensor) -> None:
        """Restrict the output head to ``token_ids`` (sorted, unique, [UNK] and [SEP] among them)."""
        ids = torch.as_tensor(token_ids, dtype=torch.long).unique()
        if ids.numel() != self.cfg.output_vocab_size:
            raise ValueError(f"head has {self.cfg.output_vocab_size} outputs, got {ids.numel()} token ids")
        for name in ("unk_token_id", "sep_token_id", "pad_token_id"):
            if not bool((ids == getattr(self.cfg, name)).any()):
                raise ValueError(f"the head vocabulary must contain the {name[:-9]} token")
        self.head_token_ids.copy_(ids)

    # --- the forward maps --------------------------------------------------------------------
    def normalize_features(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.feature_mean) / self.feature_std  # (B, L, D)

    def encode(self, features: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """Raw encoder features (B, L, D) + mask (B, L) -> latents (B, N, d). No augmentation."""
        return self.compressor(self.normalize_features(features), token_mask)

    def decode_hidden(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (B, N, d) -> decoder final hidden state (B, L, D)."""
        return self.decoder(latents)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (B, N, d) -> logits (B, L, V_head) over the head vocabulary."""
        return self.head(self.decoder(latents))

    def logits_to_token_ids(self, logits: torch.Tensor) -> torch.Tensor:
        """Argmax over the head vocabulary, mapped to tokenizer ids: (B, L, V_head) -> (B, L)."""
        return self.head_token_ids[logits.argmax(dim=-1)]

    def token_ids_to_head(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Tokenizer ids (B, L) -> head indices; ids outside the head vocabulary map to [UNK]'s."""
        if self.cfg.head_vocab_size is None:
            return input_ids
        lookup = torch.searchsorted(self.head_token_ids, input_ids)
        lookup = lookup.clamp_max(self.head_token_ids.numel() - 1)
        found = self.head_token_ids[lookup] == input_ids
        unk = torch.searchsorted(self.head_token_ids, torch.tensor(self.cfg.unk_token_id, device=input_ids.device))
        return torch.where(found, lookup, unk)

    # --- training ----------------------------------------------------------------------------
    def augment(self, features: torch.Tensor, token_mask: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One augmentation per sample (method: "Autoencoder training").

        Half the batch (random rows) loses ``token_drop_prob`` of its non-pad tokens from the
        compressor's attention mask; the other half gets variance-preserving feature noise
        h' = delta h + sqrt(1 - delta^2) eps. Inputs are normalised features (B, L, D).
        At ``augment_strength`` s < 1 the drop share is s p and delta is 1 - s (1 - delta): s = 0 is clean.
        """
        B, L, _ = features.shape
        dev = features.device
        order = _draw(torch.randperm, (B,), generator, dev)
        drop_rows = torch.zeros(B, dtype=torch.bool, device=dev)
        drop_rows[order[: B // 2]] = True
        s = self.augment_strength
        drop = (_draw(torch.rand, (B, L), generator, dev) < s * self.cfg.token_drop_prob) & drop_rows[:, None]
        new_mask = token_mask & ~drop
        delta = 1.0 - s * (1.0 - self.cfg.feature_noise_delta)
        eps = _draw(torch.randn, features.shape, generator, dev).to(features.dtype)
        noisy = delta * features + (1.0 - delta ** 2) ** 0.5 * eps
        features = torch.where(drop_rows[:, None, None], features, noisy)
        return features, new_mask

    def forward(self, features: torch.Tensor, token_mask: torch.Tensor, input_ids: torch.Tensor,
                generator: torch.Generator | None = None) -> AutoencoderOutput:
        """Loss = CE(tokens) + w MSE(decoder hidden, clean normalised features), on non-pad positions
        (the CE on a random ``ce_fraction`` of them in training).

        features: raw encoder output (B, L, D); token_mask (B, L) bool; input_ids (B, L).
        Augmentations and latent dropout apply in train mode only.
        """
        clean = self.normalize_features(features)                         # (B, L, D)
        inputs, mask = clean, token_mask
        if self.training:
            inputs, mask = self.augment(clean, token_mask, generator)
        latents = self.compressor(inputs, mask)                           # (B, N, d)
        decoder_in = latents
        latent_dropout = self.augment_strength * self.cfg.latent_dropout
        if self.training and latent_dropout > 0:
            keep = _draw(torch.rand, latents.shape, generator, latents.device) >= latent_dropout
            decoder_in = latents * keep                                   # no 1/(1-p) rescaling
        hidden = self.decoder(decoder_in)                                 # (B, L, D)
        m = token_mask
        mse = F.mse_loss(hidden[m].float(), clean[m].float())
        # token CE on all non-pad positions, or (training, ce_fraction < 1) a random share of them:
        # the head is about half a step's cost, and the MSE term already supervises every position
        ce_mask = m
        if self.training and self.cfg.ce_fraction < 1.0:
            ce_mask = m & (_draw(torch.rand, m.shape, generator, m.device) < self.cfg.ce_fraction)
        logits = self.head(hidden[ce_mask])                               # (M, V_head)
        targets = self.token_ids_to_head(input_ids)[ce_mask]              # (M,)
        ce = F.cross_entropy(logits.float(), targets)
        accuracy = (logits.argmax(-1) == targets).float().mean()
        return AutoencoderOutput(ce + self.cfg.mse_weight * mse, ce, mse, accuracy, latents)
