"""Convert the authors' released Cosmos checkpoints into a pipeline folder this project loads offline.

    python -m train.convert_official --autoencoder AE.pth [--diffusion DIFF.pth] --tokenizer NAME_OR_PATH \
        [--schedule-d D] --out FOLDER

The released files (``aws s3 cp s3://cosmos-latent-diffusion/checkpoints/<name> <dest> --region eu-north-1``)
are the official trainer's states; ``cosmos.official`` maps them onto this project's paper-base models
exactly. The folder holds safetensors + JSON only: the autoencoder, the denoiser (EMA weights and the
diffusion file's latent statistics; left out without ``--diffusion``: an autoencoder-only folder encodes,
decodes, interpolates and maps latents, and does not generate), the frozen BERT taken from the
autoencoder file with the tokenizer from ``--tokenizer`` (a hub id needs a network once; a local folder
does not) in ``encoder/``, the schedule's d (``--schedule-d``, else the ``d=`` in the diffusion file's
path; never guessed), the paper's sampler as the ``"paper"`` sampling preset, and a model card. It is
written beside FOLDER and renamed into place at the end: on any error nothing is left behind.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
from pathlib import Path

import torch

from cosmos import CheckpointError, CosmosPipeline
from cosmos.card import ModelCard
from cosmos.config import ConfigError, SamplingConfig
from cosmos.encoder import EncoderLoadError, FrozenEncoder
from cosmos.official import (ENCODER_DIR, ORIGIN, PAPER_SAMPLING, OfficialFormatError, build_bert, check_pair,
                             convert_autoencoder, convert_denoiser, load_training_state, reported_figures,
                             schedule_config, schedule_d_from_path)

from .export import card_samples, sampler_property, write_card

PAPER_PRESET = "paper"
"""The name of the paper's sampler setting in ``pipe.sampling_presets`` (model_index.json's ``sampling_presets``)."""
START_SAMPLING = SamplingConfig(sampler="dpm2m", steps=10, time_grid="uniform", t_end=0.05, final_x0=True)
"""What a converted folder starts on: the setting this project measured as its fastest good one on its own
checkpoints (DPM-Solver++(2M), 10 steps, ending on x0). Its quality on the released weights is not measured."""
S3 = "s3://cosmos-latent-diffusion/checkpoints"
LICENSES = ("The weights carry no license from their authors: none comes with the released files. This folder "
            "therefore grants no license for them; keep a copy private (`python -m train.push` makes such a repo "
            "private by default) unless the authors agree to more. This project's code, which converted them, is "
            "Apache-2.0.")


def _release_name(path: Path) -> str:
    """``<release folder>/<step>.pth`` as named on the authors' bucket (the folder carries N, data and d)."""
    return f"{path.parent.name}/{path.name}"


def _is_release(name: str) -> bool:
    """Whether a ``_release_name`` looks like one of the bucket's files (then the card can say how to fetch it)."""
    return name.startswith(("autoencoder-", "diffusion-"))


def _schedule_d(args) -> float:
    if args.schedule_d is not None:
        if not args.schedule_d > 0:
            raise OfficialFormatError(f"--schedule-d must be > 0, got {args.schedule_d}")
        return float(args.schedule_d)
    if args.diffusion is None:
        return 5.0   # an autoencoder-only folder never samples; its schedule section is a placeholder
    d = schedule_d_from_path(args.diffusion)
    if d is None:
        raise OfficialFormatError(f"the schedule's d is not stored in the diffusion file and its path "
                                  f"{args.diffusion} has no 'd=' (the released folders are named like "
                                  "diffusion-rocstories-16-d=5-final): give --schedule-d (5 for N = 16 and 32, "
                                  "7 for N = 64 in the paper)")
    return d


def _load_tokenizer(name: str):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()   # the weights' "Writing model shards" bar, too
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        hint = ("a local folder needs its tokenizer files" if Path(name).is_dir() else
                "it is not a local folder, and as a hub id it needs a network connection (or a local cache)")
        raise OfficialFormatError(f"--tokenizer {name!r} could not be loaded: {hint} "
                                  f"({str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__})") from None


def _card(folder: Path, args, pipe: CosmosPipeline, d: float) -> ModelCard:
    """The card of the folder being written (``folder``; it is renamed to ``args.out`` afterwards)."""
    ae = pipe.autoencoder.cfg
    count = pipe.summary().parameters
    ae_name = _release_name(Path(args.autoencoder))
    diff_name = _release_name(Path(args.diffusion)) if args.diffusion else None
    properties = {
        "frozen encoder": f"BERT from the autoencoder file (width {ae.width}), tokenizer `{args.tokenizer}`, in `encoder/`",
        "compression": f"L = {ae.max_length} tokens -> N = {ae.num_latents} latents of width {ae.latent_width} "
                       f"({ae.max_length // ae.num_latents}x)",
        "compressor / decoder": ae.architecture(),
        "parameters": f"encoder {count['encoder'] / 1e6:.1f}M, autoencoder {count['autoencoder'] / 1e6:.1f}M, "
                      f"denoiser {count['denoiser'] / 1e6:.1f}M",
        "weights on disk": f"{sum(f.stat().st_size for f in folder.rglob('*.safetensors')) / 2 ** 20:.1f} MB "
                           "(float32 safetensors)"}
    if pipe.can_generate:
        den = pipe.denoiser.cfg
        paper = pipe.sampling_presets[PAPER_PRESET]
        properties |= {
            "denoiser": f"{den.num_layers} blocks x {den.latent_dim}, {den.num_heads} heads, self-conditioning "
                        f"{den.self_condition} (EMA weights)",
            "schedule / sampler": sampler_property(pipe) + " (a speed choice, this project's measured default on "
                                  "its own checkpoints; its quality on these weights is not measured)",
            "the paper's sampler": f"{paper.sampler}, {paper.steps} steps, t from 1 to {paper.t_end}, the last step's "
                                   f"mean: sampling preset `{PAPER_PRESET}` (what the paper's figures used)"}
    else:
        properties["denoiser"] = "none (autoencoder only: encode, decode, interpolate, latent map; no generation)"
    files = " and ".join(f"`{n}`" for n in (ae_name, diff_name) if n)
    files = files if all(_is_release(n) for n in (ae_name, diff_name) if n) else f"here converted from {files}"
    provenance = (f"Trained by the authors of Cosmos (V. Meshchaninov, E. Chimbulatov, A. Shabalin, A. Abramov, "
                  f"D. Vetrov, \"Compressed and Smooth Latent Space for Text Diffusion Modeling\", arXiv 2506.21170, "
                  f"NeurIPS 2025; code: github.com/MeshchaninovViacheslav/cosmos) and released on their S3 bucket "
                  f"`{S3}` (region eu-north-1): {files}. Converted by `python -m train.convert_official` to this "
                  f"project's paper-base architecture with the official block variants; the conversion reproduces "
                  f"the official code's outputs to a relative error below 1e-5 (tests/test_official_convert.py, on "
                  f"a tiny checkpoint of the same layout). The schedule's d = {d:g}"
                  + (" (from --schedule-d)." if args.schedule_d is not None else " (from the release's folder name)."))
    measured = ("Measured here: only the conversion's exactness (above) and the seeded samples below, made with "
                "the folder's default sampler; no quality figure of these weights was measured here.")
    reproduce = [f"aws s3 cp {S3}/{n} {n} --region eu-north-1" for n in (ae_name, diff_name) if n and _is_release(n)]
    reproduce.append(" ".join(["python -m train.convert_official", f"--autoencoder {args.autoencoder}"]
                              + ([f"--diffusion {args.diffusion}"] if args.diffusion else [])
                              + [f"--tokenizer {args.tokenizer}"]
                              + ([f"--schedule-d {args.schedule_d:g}"] if args.schedule_d is not None else [])
                              + [f"--out {args.out}"]))
    return ModelCard(
        name=Path(args.out).name, preset="paper-base (official release, converted)", path=str(args.out), properties=properties,
        licenses=LICENSES, stages=[], machine="the authors' (not recorded in the files)", optimizer="AdamW (the authors')",
        compression=ae.max_length // ae.num_latents, reconstruction=[], target=None, limitations=measured,
        guidance_scale=None, samples=card_samples(pipe) if pipe.can_generate else [], reproduce=reproduce,
        measured_on=datetime.date.today().isoformat(), encoder=args.tokenizer, license="unknown", origin=ORIGIN,
        provenance=provenance, reported=reported_figures(ae.num_latents, ae.max_length, diff_name))


def convert(args) -> Path:
    """Write the converted folder at ``args.out``; raises OfficialFormatError (and the loaders' errors)."""
    out = Path(args.out)
    if out.exists():
        raise OfficialFormatError(f"--out {out} already exists; choose a new folder (nothing is overwritten)")
    d = _schedule_d(args)
    tokenizer = _load_tokenizer(args.tokenizer)
    ae_state = load_training_state(args.autoencoder, "autoencoder")
    dn_state = load_training_state(args.diffusion, "diffusion") if args.diffusion else None
    if not isinstance(ae_state["encoder"], dict):
        raise OfficialFormatError(f"--autoencoder {args.autoencoder}: its encoder entry is not a state dict")
    bert = build_bert(ae_state, args.tokenizer)
    encoder = FrozenEncoder(bert, tokenizer, ENCODER_DIR)      # checks the tokenizer's special tokens
    converted = convert_autoencoder(ae_state, encoder.special_token_ids(), encoder.vocab_size, ENCODER_DIR)
    denoiser = convert_denoiser(dn_state, converted.autoencoder.cfg.head_dim) if dn_state is not None else None
    if denoiser is not None:
        check_pair(converted, denoiser)
    del ae_state, dn_state

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.converting-{os.getpid()}"
    try:
        bert.save_pretrained(tmp / ENCODER_DIR)
        tokenizer.save_pretrained(tmp / ENCODER_DIR)
        presets = {PAPER_PRESET: PAPER_SAMPLING} if denoiser is not None else {}
        CosmosPipeline(encoder, converted.autoencoder, denoiser, schedule_config(d), START_SAMPLING,
                       sampling_presets=presets).save_pretrained(tmp)
        pipe = CosmosPipeline.from_pretrained(tmp)            # what users will load, checked before it is named
        write_card(tmp, _card(tmp, args, pipe, d))
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--autoencoder", required=True, help="the released autoencoder .pth (e.g. "
                        "autoencoder-num_latents=16-wikipedia-final-128/100000.pth)")
    parser.add_argument("--diffusion", help="the released diffusion .pth (e.g. diffusion-rocstories-16-d=5-final/"
                        "180000.pth); leave out for an autoencoder-only folder")
    parser.add_argument("--tokenizer", required=True, help="the tokenizer the autoencoder was trained with: a hub id "
                        "(bert-base-cased; needs a network once) or a local folder")
    parser.add_argument("--schedule-d", type=float, help="the tan-d schedule's d; default: the d= in the diffusion path")
    parser.add_argument("--out", required=True, help="the folder to write (must not exist)")
    args = parser.parse_args(argv)
    try:
        with torch.no_grad():   # scoped: main() also runs in-process (tests), where training must keep autograd
            out = convert(args)
    except (OfficialFormatError, CheckpointError, ConfigError, EncoderLoadError, OSError) as err:
        print(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"converted to {out}")


if __name__ == "__main__":
    main()
