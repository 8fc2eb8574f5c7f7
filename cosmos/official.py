"""The authors' released Cosmos checkpoints -> this project's models, number for number.

The official training code (MeshchaninovViacheslav/cosmos) saves pickled training states; its released
files (an autoencoder ``.../100000.pth`` and a diffusion model ``.../180000.pth``) load with
``torch.load(path, map_location="cpu", weights_only=True)``: plain dicts, lists, numbers and tensors.

- autoencoder file: ``encoder`` (the Perceiver compressor's state dict, the frozen BERT inside it as
  ``text_encoder.*``), ``decoder`` (the [MASK]-canvas decoder's, with BERT's word-embedding table),
  ``encodings_mean`` / ``encodings_std`` (D,), ``latent_mean`` / ``latent_std`` (N, D), training state.
- diffusion file: ``score_estimator`` (raw weights), ``ema`` (``shadow_params``: the EMA weights, a list in
  the order of the score estimator's parameters; sampling uses these), ``latent_mean`` / ``latent_std``
  (the statistics sampling denormalises with), training state.

The official blocks are this project's ``paper-base`` Perceiver, denoiser and schedule with the config
values in :func:`autoencoder_config` / :func:`denoiser_config` / :func:`schedule_config` (the brackets in
``cosmos.config``): its RMSNorm (a floor on the RMS, eps 1e-5), separate K/V projections for the latents
and the tokens, FFNs with biases, scalar mask gates 1 + w + b (on an all-[MASK] canvas a constant, stored
here as a vector of that value), absolute positions scaled by D^-1/2 (the scale is folded into the
stored tables), a time embedding of t itself with max period 10 and a 2D-wide MLP, self-conditioning
projections with biases, and a schedule computed in float32. Nothing of the official code is imported.

Values the files do not hold, taken from the official configs (identical for every released model):
the norms' eps (``normalization.layer_eps`` / ``layer_norm_eps`` = 1e-5), the time embedding's max period
(10), RoPE's theta (10^4), the attention head width of the denoiser (equal to the autoencoder's, whose
QK-norm weights give it: 64 in every release) and the schedule's d (in the diffusion folder's name only).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .autoencoder import CosmosAutoencoder
from .config import AutoencoderConfig, ConfigError, DenoiserConfig, SamplingConfig, ScheduleConfig
from .denoiser import CosmosDenoiser

ORIGIN = "official-cosmos"
"""``ModelCard.origin`` of a folder converted from the authors' release (``train.push`` keeps such repos private)."""
ENCODER_DIR = "encoder"
"""The converted folder's subfolder holding the frozen BERT and its tokenizer (``AutoencoderConfig.encoder``)."""

NORM_EPS = 1e-5           # the official configs' normalization.layer_eps and layer_norm_eps
TIME_MAX_PERIOD = 10.0    # architecture.time_embedding.max_period
ROPE_THETA = 10000.0      # rope_theta
TRAIN_T_MIN = 1e-5        # diffusion.eps: training draws t ~ U[1e-5, 1]
PAPER_SAMPLING = SamplingConfig(sampler="sde", steps=200, time_grid="uniform", t_end=0.05, final_x0=False)
"""The paper's sampler (its Table settings and the official code's ``dynamic.N``, ``diffusion.t_min``): 200
Euler-Maruyama steps from t = 1 to 0.05, returning the last step's mean."""

AUTOENCODER_KEYS = ("encoder", "decoder", "encodings_mean", "encodings_std")
DIFFUSION_KEYS = ("score_estimator", "ema", "latent_mean", "latent_std")


class OfficialFormatError(ValueError):
    """A file is not the official training state it was given as, or two files do not fit together."""


# --- reading the training states ------------------------------------------------------------------------
def load_training_state(path: str | Path, role: str) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` of an official ``role`` file ("autoencoder" or "diffusion"),
    checked to hold what that role needs; a file of the other role is named as such."""
    path = Path(path)
    if not path.is_file():
        raise OfficialFormatError(f"--{role} {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OfficialFormatError(f"--{role} {path} cannot be read as a PyTorch checkpoint (truncated, corrupt, or "
                                  f"not a weights-only file: {reason[:160]})") from None
    if not isinstance(state, dict):
        raise OfficialFormatError(f"--{role} {path} holds a {type(state).__name__}, not an official training state")
    needed, other, other_keys = ((AUTOENCODER_KEYS, "diffusion", DIFFUSION_KEYS) if role == "autoencoder"
                                 else (DIFFUSION_KEYS, "autoencoder", AUTOENCODER_KEYS))
    missing = [k for k in needed if k not in state]
    if missing and all(k in state for k in other_keys[:2]):
        raise OfficialFormatError(f"--{role} {path} is an official {other} checkpoint (it has "
                                  f"{' and '.join(other_keys[:2])}), not a {role} one: pass it as --{other}")
    if missing:
        raise OfficialFormatError(f"--{role} {path} is not an official Cosmos {role} checkpoint: it lacks "
                                  f"{', '.join(missing)}")
    return state


def _tensor(state: dict, key: str, where: str, shape: tuple | None = None) -> torch.Tensor:
    value = state.get(key)
    if not isinstance(value, torch.Tensor):
        raise OfficialFormatError(f"{where}: {key} is missing")
    if shape is not None and tuple(value.shape) != shape:
        raise OfficialFormatError(f"{where}: {key} has shape {tuple(value.shape)}, expected {shape}")
    return value.detach().float()


def _count(state: dict, pattern: str) -> int:
    """How many consecutive indices i have a key matching ``pattern.format(i)``."""
    n = 0
    while any(k.startswith(pattern.format(n)) for k in state):
        n += 1
    return n


# --- the autoencoder ------------------------------------------------------------------------------------
@dataclass
class OfficialAutoencoder:
    """The converted autoencoder, with the latent statistics of its file."""

    autoencoder: CosmosAutoencoder
    latent_mean: torch.Tensor      # (N, D) the autoencoder file's latent statistics
    latent_std: torch.Tensor


def autoencoder_config(encoder: dict, decoder: dict, special_ids: dict[str, int], encoder_path: str) -> AutoencoderConfig:
    """The paper-base config with the official block variants, sized from the two state dicts."""
    where = "autoencoder encoder"
    latents = _tensor(encoder, "latents", where)
    N, D = latents.shape
    L = _tensor(decoder, "positional_emb.emb.weight", "autoencoder decoder").shape[0]
    head_dim = _tensor(encoder, "latent_layers.0.latent_attn.query_norm.gamma", where).shape[0]
    ffn_hidden = _tensor(encoder, "latent_layers.0.ffn_latent.ffd.1.weight", where).shape[0]
    vocab = _tensor(decoder, "lm_head.weight", "autoencoder decoder").shape[0]
    if "positional_latent.emb.weight" in decoder:
        raise OfficialFormatError("autoencoder decoder: latents narrower than the encoder width "
                                  "(positional_latent) are not supported; every released model has them equal")
    if ffn_hidden % D or D % head_dim:
        raise OfficialFormatError(f"{where}: FFN width {ffn_hidden} or head width {head_dim} does not divide "
                                  f"the model width {D}")
    try:
        return AutoencoderConfig(
            encoder=encoder_path, max_length=L, num_latents=N, compressor_type="perceiver",
            compressor_layers=_count(encoder, "latent_layers.{}."), decoder_layers=_count(decoder, "layers.{}."),
            head_dim=head_dim, ffn_mult=ffn_hidden // D, dropout=0.1, locality_bias=0.0,
            norm_kind="clamped", norm_eps=NORM_EPS, separate_kv=True, ffn_bias=True, canvas="gated",
            hidden_size=D, vocab_size=vocab, **special_ids)
    except ConfigError as err:
        raise OfficialFormatError(f"autoencoder: {err}") from None


def _scaled_positions(table: torch.Tensor, rows: int) -> torch.Tensor:
    """The official absolute positions: the first ``rows`` rows of the table times D^-1/2 (float32, as it computes)."""
    return table[:rows] * table.shape[1] ** -0.5


def _mask_gate(state: dict, prefix: str, width: int) -> torch.Tensor:
    """The official ScaleMask on a [MASK] position, x (1 + w + b), as a (width,) vector of that factor."""
    w = _tensor(state, f"{prefix}.scale_mlp.weight", prefix, (1, 1)).reshape(())
    b = _tensor(state, f"{prefix}.scale_mlp.bias", prefix, (1,)).reshape(())
    return ((w + b) + 1.0).expand(width).clone()


def _perceiver_attention(src: str, dst: str, own: str, other: str) -> dict[str, str]:
    """Key map of one official LatentAttention onto a block's norms and :class:`~cosmos.layers.Attention`:
    ``own`` / ``other`` name our norms of the query stream and of the stream it reads."""
    return {f"{src}.norm_latents.gamma": f"{dst}.{own}.weight", f"{src}.norm_embeddings.gamma": f"{dst}.{other}.weight",
            f"{src}.latents_to_Q.weight": f"{dst}.attn.to_q.weight",
            f"{src}.latents_to_KV.weight": f"{dst}.attn.to_kv.weight",
            f"{src}.embeddings_to_KV.weight": f"{dst}.attn.to_kv_other.weight",
            f"{src}.query_norm.gamma": f"{dst}.attn.q_norm.weight", f"{src}.key_norm.gamma": f"{dst}.attn.k_norm.weight",
            f"{src}.projector_latents.weight": f"{dst}.attn.to_out.weight"}


def _ffn(src: str, dst: str) -> dict[str, str]:
    """Official FeedForwardNetwork (LayerNorm, Linear, GELU, Dropout, Linear) -> our GeluFeedForward, same indices."""
    return {f"{src}.ffd.{i}.{p}": f"{dst}.net.{i}.{p}" for i in (0, 1, 4) for p in ("weight", "bias")}


def autoencoder_state(encoder: dict, decoder: dict, cfg: AutoencoderConfig) -> dict[str, torch.Tensor]:
    """Our CosmosAutoencoder's state dict (without the feature statistics) from the official ones."""
    D, N, L = cfg.width, cfg.num_latents, cfg.max_length
    names = {"latents": "compressor.queries", "latent_norm.gamma": "compressor.input_norm.weight",
             "output_norm.gamma": "compressor.out_norm.weight"}
    for i in range(cfg.compressor_layers):
        names |= _perceiver_attention(f"latent_layers.{i}.latent_attn", f"compressor.blocks.{i}",
                                      "norm_latents", "norm_tokens")
        names |= _ffn(f"latent_layers.{i}.ffn_latent", f"compressor.blocks.{i}.ffn")
    state = {dst: _tensor(encoder, src, "autoencoder encoder") for src, dst in names.items()}
    state["compressor.token_pos"] = _scaled_positions(_tensor(encoder, "positional_emb.emb.weight",
                                                              "autoencoder encoder"), L)

    names = {"lm_head.weight": "head.weight"} | _ffn("embedding_ffn", "decoder.canvas_ffn")
    for i in range(cfg.decoder_layers):
        names |= _perceiver_attention(f"layers.{i}.latent_attn", f"decoder.blocks.{i}", "norm_canvas", "norm_latents")
        names |= _ffn(f"layers.{i}.ffn_latent", f"decoder.blocks.{i}.ffn")
        state[f"decoder.blocks.{i}.attn_gate"] = _mask_gate(decoder, f"layers.{i}.attn_scale", D)
        state[f"decoder.blocks.{i}.ffn_gate"] = _mask_gate(decoder, f"layers.{i}.ffn_scale", D)
    state |= {dst: _tensor(decoder, src, "autoencoder decoder") for src, dst in names.items()}
    positions = _tensor(decoder, "positional_emb.emb.weight", "autoencoder decoder")
    state["decoder.canvas_pos"] = _scaled_positions(positions, L)
    state["decoder.latent_pos"] = _scaled_positions(positions, N)
    state["decoder.canvas_gate"] = _mask_gate(decoder, "scale_embedding", D)
    state["decoder.mask_embedding"] = _tensor(decoder, "embedding.weight", "autoencoder decoder")[cfg.mask_token_id]
    return state


def _load(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy ``state`` into ``model``, naming what is missing, left over or of the wrong shape."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or wrong:
        raise OfficialFormatError(f"{where}: the weights do not fit the official architecture "
                                  f"({'missing ' + ', '.join(missing[:4]) if missing else ''}"
                                  f"{'; ' if missing and wrong else ''}{', '.join(wrong[:4])})")
    model.load_state_dict({k: state[k] for k in expected}, strict=True)


def convert_autoencoder(state: dict[str, Any], special_ids: dict[str, int], vocab_size: int,
                        encoder_path: str = ENCODER_DIR) -> OfficialAutoencoder:
    """An official autoencoder training state -> :class:`OfficialAutoencoder` (eval mode).

    ``special_ids`` and ``vocab_size`` are the tokenizer's; the checkpoint's head must have ``vocab_size`` rows.
    """
    encoder, decoder = state["encoder"], state["decoder"]
    if not isinstance(encoder, dict) or not isinstance(decoder, dict):
        raise OfficialFormatError("autoencoder: encoder and decoder must be state dicts")
    cfg = autoencoder_config(encoder, decoder, special_ids, encoder_path)
    if cfg.vocab_size != vocab_size:
        raise OfficialFormatError(f"the tokenizer has {vocab_size} tokens but the autoencoder's head has "
                                  f"{cfg.vocab_size}: give the tokenizer the checkpoint was trained with "
                                  "(bert-base-cased for the released models)")
    model = CosmosAutoencoder(cfg)
    _load(model, autoencoder_state(encoder, decoder, cfg) | {"feature_mean": model.feature_mean,
                                                             "feature_std": model.feature_std,
                                                             "head_token_ids": model.head_token_ids}, "autoencoder")
    D, N = cfg.width, cfg.num_latents
    try:
        model.set_feature_stats(_tensor(state, "encodings_mean", "autoencoder", (D,)),
                                _tensor(state, "encodings_std", "autoencoder", (D,)))
    except ValueError as err:
        raise OfficialFormatError(f"autoencoder: {err}") from None
    return OfficialAutoencoder(model.eval(), _tensor(state, "latent_mean", "autoencoder", (N, D)),
                               _tensor(state, "latent_std", "autoencoder", (N, D)))


# --- the denoiser -------------------------------------------------------------------------------------
def _score_estimator_names(num_layers: int, self_condition: bool) -> list[tuple[str, str]]:
    """(official name, our name) of every score-estimator parameter, in the official ``parameters()`` order
    (the order of the EMA's ``shadow_params``)."""
    pairs = [("time_emb.0.weight", "time_mlp.0.weight"), ("time_emb.0.bias", "time_mlp.0.bias"),
             ("time_emb.2.weight", "time_mlp.2.weight"), ("time_emb.2.bias", "time_mlp.2.bias")]
    half = num_layers // 2
    for ours, (group, j) in enumerate([("input_blocks", j) for j in range(half)] + [("output_blocks", j) for j in range(half)]):
        src, dst = f"encoder.{group}.{j}", f"blocks.{ours}"
        pairs += [(f"{src}.self_attn.query.weight", f"{dst}.attn.to_q.weight"),
                  (f"{src}.self_attn.key.weight", f"{dst}.attn.to_kv.weight:k"),
                  (f"{src}.self_attn.value.weight", f"{dst}.attn.to_kv.weight:v"),
                  (f"{src}.self_attn.o_proj.weight", f"{dst}.attn.to_out.weight"),
                  (f"{src}.norm_self_attn.gamma", f"{dst}.attn_norm.weight"),
                  (f"{src}.mlp.gate_proj.weight", f"{dst}.ffn.w13.weight:gate"),
                  (f"{src}.mlp.up_proj.weight", f"{dst}.ffn.w13.weight:up"),
                  (f"{src}.mlp.down_proj.weight", f"{dst}.ffn.w2.weight"),
                  (f"{src}.norm_mlp.gamma", f"{dst}.ffn_norm.weight")]
    pairs += [(f"encoder.time_layers.{i}.1.{p}", f"time_proj.{i}.{p}") for i in range(num_layers) for p in ("weight", "bias")]
    if self_condition:
        pairs += [(f"encoder.self_cond_layers.{i}.{p}", f"cond_proj.{i}.{p}")
                  for i in range(num_layers) for p in ("weight", "bias")]
    return pairs + [("encoder.output_norm.gamma", "final_norm.weight")]


def denoiser_config(raw: dict, num_latents: int, head_dim: int) -> DenoiserConfig:
    """The paper-base denoiser config with the official variants, sized from the score estimator's weights."""
    where = "diffusion score_estimator"
    if any(k.startswith(("conditional_encoder.", "position_embeddings.")) for k in raw):
        raise OfficialFormatError(f"{where}: prompt-conditioned official models are not supported (only the "
                                  "unconditional ones are released)")
    time_hidden, D = _tensor(raw, "time_emb.0.weight", where).shape
    half = _count(raw, "encoder.input_blocks.{}.")
    if half == 0 or _count(raw, "encoder.output_blocks.{}.") != half:
        raise OfficialFormatError(f"{where}: expected as many output blocks as input blocks (U-Net skips)")
    try:
        return DenoiserConfig(
            latent_dim=D, num_latents=num_latents, num_layers=2 * half, head_dim=head_dim,
            ffn_hidden=_tensor(raw, "encoder.input_blocks.0.mlp.gate_proj.weight", where).shape[0],
            time_embed_dim=D, self_condition="encoder.self_cond_layers.0.weight" in raw, rope_theta=ROPE_THETA,
            norm_kind="clamped", norm_eps=NORM_EPS, time_hidden=time_hidden, time_scale=1.0,
            time_max_period=TIME_MAX_PERIOD, self_cond_bias=True)
    except ConfigError as err:
        raise OfficialFormatError(f"{where}: {err}") from None


def convert_denoiser(state: dict[str, Any], head_dim: int) -> CosmosDenoiser:
    """An official diffusion training state -> CosmosDenoiser with the EMA weights and the file's latent stats."""
    raw, ema = state["score_estimator"], state["ema"]
    if not isinstance(raw, dict) or not isinstance(ema, dict) or not isinstance(ema.get("shadow_params"), list):
        raise OfficialFormatError("diffusion: score_estimator must be a state dict and ema hold a shadow_params list")
    latent_mean = state["latent_mean"]
    if not isinstance(latent_mean, torch.Tensor) or latent_mean.ndim != 2:
        raise OfficialFormatError("diffusion: latent_mean must be an (N, D) tensor")
    cfg = denoiser_config(raw, latent_mean.shape[0], head_dim)
    pairs = _score_estimator_names(cfg.num_layers, cfg.self_condition)
    shadow = ema["shadow_params"]
    if sorted(name for name, _ in pairs) != sorted(raw) or len(shadow) != len(pairs):
        raise OfficialFormatError(f"diffusion: the score estimator has {len(raw)} tensors and the EMA "
                                  f"{len(shadow)}; the official architecture of this size has {len(pairs)}")
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for (name, ours), value in zip(pairs, shadow):
        if not isinstance(value, torch.Tensor) or value.shape != raw[name].shape:
            raise OfficialFormatError(f"diffusion: EMA weight for {name} has shape "
                                      f"{tuple(getattr(value, 'shape', ()))}, the raw weight {tuple(raw[name].shape)}")
        key, _, piece = ours.partition(":")
        parts.setdefault(key, {})[piece] = value.detach().float()
    # fused projections: K and V into to_kv, gate and up into w13 (the order Attention / SwiGLU split them in)
    weights = {key: torch.cat([p["k"], p["v"]]) if "k" in p else torch.cat([p["gate"], p["up"]]) if "gate" in p
               else p[""] for key, p in parts.items()}
    model = CosmosDenoiser(cfg)
    N, D = cfg.num_latents, cfg.latent_dim
    _load(model, weights | {"latent_mean": model.latent_mean, "latent_std": model.latent_std}, "denoiser")
    try:
        model.set_latent_stats(_tensor(state, "latent_mean", "diffusion", (N, D)),
                               _tensor(state, "latent_std", "diffusion", (N, D)))
    except ValueError as err:
        raise OfficialFormatError(f"diffusion: {err}") from None
    return model.eval()


# --- the schedule -----------------------------------------------------------------------------------
D_IN_NAME = re.compile(r"(?:^|[-_/])d=(\d+(?:\.\d+)?)(?=$|[-_/])")


def schedule_d_from_path(path: str | Path) -> float | None:
    """The tan-d schedule's d from a released diffusion path (``diffusion-rocstories-16-d=5-final/180000.pth``
    -> 5.0); None when no part of the path says ``d=...``."""
    found = {float(m.group(1)) for part in Path(path).parts for m in D_IN_NAME.finditer(part)}
    if len(found) > 1:
        raise OfficialFormatError(f"{path}: the path names several schedule d values {sorted(found)}; give --schedule-d")
    return found.pop() if found else None


def schedule_config(d: float) -> ScheduleConfig:
    """The official tan-d schedule: beta clipped at t = 0.95, computed in float32, training t from 1e-5."""
    return ScheduleConfig(d=float(d), t_min=TRAIN_T_MIN, beta_t_max=0.95, compute_dtype="float32")


def check_pair(ae: OfficialAutoencoder, denoiser: CosmosDenoiser) -> None:
    """The diffusion model must work on the autoencoder's latents: same N and width."""
    a, d = (ae.autoencoder.cfg.num_latents, ae.autoencoder.cfg.width), (denoiser.cfg.num_latents, denoiser.cfg.latent_dim)
    if a != d:
        raise OfficialFormatError(f"the diffusion model works on latents of shape (N, D) = {d} but the autoencoder "
                                  f"makes {a}: they come from different releases (match N in their folder names)")


# --- the frozen encoder ------------------------------------------------------------------------------
BERT_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")   # buffers older transformers saved


def build_bert(ae_state: dict[str, Any], config_source: str | None = None):
    """The frozen BERT of an autoencoder training state (``encoder``'s ``text_encoder.*``) as a transformers
    ``BertModel`` (no pooler, as the official code loads it; eval mode).

    Sizes come from the weights. The head count and the rest of the config come from ``config_source``'s
    config (the tokenizer's folder or hub id, when it has one of a BERT of this width), else BERT's own
    convention of 64-wide heads (bert-base-cased: 12 x 64)."""
    from transformers import AutoConfig, BertConfig, BertModel

    prefix = "text_encoder."
    state = {k[len(prefix):]: v for k, v in ae_state["encoder"].items()
             if k.startswith(prefix) and k[len(prefix):] not in BERT_BUFFERS}
    where = "autoencoder encoder text_encoder"
    if not state:
        raise OfficialFormatError(f"autoencoder encoder: no {prefix}* weights (the frozen BERT)")
    V, D = _tensor(state, "embeddings.word_embeddings.weight", where).shape
    sizes = dict(vocab_size=V, hidden_size=D, num_hidden_layers=_count(state, "encoder.layer.{}."),
                 intermediate_size=_tensor(state, "encoder.layer.0.intermediate.dense.weight", where).shape[0],
                 max_position_embeddings=_tensor(state, "embeddings.position_embeddings.weight", where).shape[0],
                 type_vocab_size=_tensor(state, "embeddings.token_type_embeddings.weight", where).shape[0])
    config = None
    if config_source is not None:
        try:
            found = AutoConfig.from_pretrained(config_source)
            config = found if found.model_type == "bert" and found.hidden_size == D else None
        except (OSError, ValueError):
            config = None
    if config is None:
        if D % 64:
            raise OfficialFormatError(f"{where}: width {D} is not a multiple of 64 and --tokenizer has no BERT "
                                      "config of that width to take the head count from")
        config = BertConfig(num_attention_heads=D // 64)
    for name, value in sizes.items():
        setattr(config, name, value)
    model = BertModel(config, add_pooling_layer=False)
    expected = model.state_dict()
    if set(expected) != set(state) or any(state[k].shape != v.shape for k, v in expected.items()):
        odd = sorted(set(expected) ^ set(state))[:4] or [k for k, v in expected.items() if state[k].shape != v.shape][:4]
        raise OfficialFormatError(f"{where}: the weights are not a BERT of {sizes['num_hidden_layers']} layers x {D} "
                                  f"({', '.join(odd)})")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


# --- what the card says ----------------------------------------------------------------------------------
PAPER_MAUVE_ROCSTORIES = {16: "0.836", 32: "0.901", 64: "0.923"}     # the paper's MAUVE against N (ROCStories)
PAPER_RECONSTRUCTION = {16: "0.998", 32: "0.999-1.000", 64: "0.999-1.000", 128: "0.999-1.000"}  # L = 128


def reported_figures(num_latents: int, max_length: int, diffusion_name: str | None) -> dict[str, str]:
    """The paper's figures for a release of this N (and L, and diffusion data named in its path)."""
    figures = {}
    if max_length == 128 and num_latents in PAPER_RECONSTRUCTION:
        figures[f"token reconstruction accuracy, Wikipedia, L = 128, N = {num_latents} "
                f"({128 // num_latents}x)"] = PAPER_RECONSTRUCTION[num_latents]
    if diffusion_name and "rocstories" in diffusion_name.lower() and num_latents in PAPER_MAUVE_ROCSTORIES:
        figures[f"MAUVE, ROCStories, unconditional, N = {num_latents}, 200 SDE steps"] = \
            PAPER_MAUVE_ROCSTORIES[num_latents]
    return figures


__all__ = ["ORIGIN", "ENCODER_DIR", "PAPER_SAMPLING", "OfficialFormatError", "OfficialAutoencoder",
           "load_training_state", "convert_autoencoder", "convert_denoiser", "schedule_config",
           "schedule_d_from_path", "check_pair", "build_bert", "reported_figures"]
