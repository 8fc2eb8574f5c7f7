"""About tab: what is loaded (config, sizes, data, the model card's measured metrics), how to train one."""

from __future__ import annotations

import re

import gradio as gr

from .context import Playground

TRAIN_YOUR_OWN = """
## Train your own
One command per stage (presets in `train/configs/`: `tiny` for a smoke test, `cpu-small` for this
app's default, `paper-base` for GPUs):
```bash
python -m train.autoencoder  --config cpu-small
python -m train.latent_stats --config cpu-small
python -m train.diffusion    --config cpu-small
python -m train.export       --config cpu-small --out my-cosmos
python -m train.latent_map   --pipeline my-cosmos       # the map this app draws
python app.py --checkpoint my-cosmos                    # or COSMOS_CHECKPOINT=my-cosmos python app.py
```
A folder or a Hugging Face hub id works as the checkpoint. For prompts (story continuation, classifier-free
guidance), start the app on the embedded `assets/cosmos-story-cpu`, or train your own with the `story-cpu`
stages after `cpu-small`'s autoencoder:
```bash
python app.py --checkpoint assets/cosmos-story-cpu      # the embedded prompt-conditioned checkpoint
python -m train.latent_stats --config story-cpu
python -m train.diffusion    --config story-cpu
python -m train.export       --config story-cpu --out my-story-cosmos
python app.py --checkpoint my-story-cosmos              # the prompt box and guidance slider come alive
```
"""


def _params(module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.1f}M" if module is not None else "none"


def summary_rows(pg: Playground) -> list[tuple[str, str]]:
    pipe, ae = pg.pipe, pg.pipe.autoencoder.cfg
    weights = sum(f.stat().st_size for f in pg.folder.rglob("*.safetensors") if "latent_map" not in f.parts)
    n, d = pipe.latent_shape
    rows = [("checkpoint", f"`{pg.name}`"),
            ("frozen encoder", f"`{ae.encoder}` (width {ae.hidden_size}, vocabulary {ae.vocab_size:,})"),
            ("compression", f"L = {ae.max_length} tokens -> N = {n} latents of width {d} "
                            f"({ae.max_length // n}x fewer vectors)"),
            ("autoencoder", ae.architecture()),
            ("parameters", f"autoencoder {_params(pipe.autoencoder)}, denoiser {_params(pipe.denoiser)} "
                           "(frozen encoder not counted)"),
            ("weights on disk", f"{weights / 2**20:.1f} MB"),
            ("sampling defaults", f"{pipe.sampling.sampler}, {pipe.sampling.steps} steps, tan-d schedule "
                                  f"d = {pipe.schedule.config.d:g}, down to t = {pipe.sampling.t_end:g}"),
            ("prompts", prompts_row(pg)),
            ("latent map", f"{len(pg.latent_map.texts)} points" if pg.latent_map else f"none ({pg.map_problem})"),
            ("loaded in", f"{pg.load_seconds:.1f} s")]
    return rows


def prompts_row(pg: Playground) -> str:
    """Whether the checkpoint takes prompts, and its default guidance scale."""
    if not pg.supports_prompts:
        return "no: unconditional checkpoint (the prompt box and guidance slider are hidden)"
    return (f"yes: prompt-conditioned (reads up to {pg.prompt_tokens} prompt tokens), default guidance scale "
            f"w = {pg.guidance_default:g} (x0 = x0_c + w (x0_c − x0_u))")


def card_body(card: str) -> tuple[str, str]:
    """(title, body) of a model card: YAML front matter dropped, the H1 title taken out, the
    "Reproduce" section dropped ("Train your own" below says the same), headings one level down."""
    card = re.sub(r"\A---\n.*?\n---\n", "", card, flags=re.S)
    title = re.search(r"^# (.+)$", card, flags=re.M)
    card = re.sub(r"^# .+\n", "", card, count=1, flags=re.M)
    card = re.sub(r"^## Reproduce\n.*?(?=^## |\Z)", "", card, flags=re.M | re.S)
    body = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", card, flags=re.M)
    return (title.group(1).strip() if title else ""), body.strip()


def limitations(card: str, sentences: int = 2) -> str | None:
    """The first sentences of the card's '**Limitations.**' paragraph, if it has one (the app's banner)."""
    match = re.search(r"^\*\*Limitations\.\*\*(.*)$", card, flags=re.M)
    if not match:
        return None
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z(])", match.group(1).strip())
    text = " ".join(parts[:sentences]).replace(" below", " (see About)")  # the card's "below" is not below here
    return "**Limitations.** " + text + (" (details in About.)" if len(parts) > sentences else "")


def about_markdown(pg: Playground) -> str:
    table = "\n".join(["| property | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in summary_rows(pg)]])
    title, card = card_body(pg.card) if pg.card else ("", "*This checkpoint has no model card (README.md).*")
    heading = f"Model card: {title}" if title else "Model card"
    return (f"## What is loaded\n{table}\n\n## {heading}\n{card}\n{TRAIN_YOUR_OWN}\n"
            "## Method\nCosmos: *Compressed and Smooth Latent Space for Text Diffusion Modeling* (Meshchaninov et "
            "al., NeurIPS 2025, [arXiv 2506.21170](https://arxiv.org/abs/2506.21170)).")


def build(pg: Playground) -> None:
    gr.Markdown(about_markdown(pg))
