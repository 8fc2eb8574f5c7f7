"""The Gradio playground over a loaded ``CosmosPipeline``: one module per tab, thin handlers.

    playground = load_playground("assets/cosmos-cpu-small")   # pipeline + model card + latent map
    build_demo(playground).launch()
"""

from cosmos.checkpoint import DEFAULT_CHECKPOINT, checkpoint_from_env

from .context import Limits, Playground, load_playground
from .ui import build_demo

__all__ = ["DEFAULT_CHECKPOINT", "Limits", "Playground", "build_demo", "checkpoint_from_env", "load_playground"]
