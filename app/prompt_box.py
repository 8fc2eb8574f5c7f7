"""The prompt box and guidance slider that the Generate and Denoising trajectory tabs share.

On a prompt-conditioned checkpoint (``pipe.supports_prompts``) both are active: a prompt is continued
by the model with classifier-free guidance, an empty one gives unconditional samples. On an
unconditional checkpoint they are hidden (a control that does nothing is not shown) and a note says how
to get a conditional one; they still exist, so the tabs' API endpoints have the same inputs whatever is
loaded.
"""

from __future__ import annotations

import gradio as gr

from .context import UNCONDITIONAL_NOTE, Playground

EXAMPLE_PROMPT = "Once upon a time, a little girl found a red ball in the park."
PROMPT_LABEL = "prompt"     # the prompt's category in gr.HighlightedText
PROMPT_COLOR = "#93c5fd"


def build(pg: Playground) -> tuple[gr.Textbox, gr.Slider]:
    """The two components (call inside a tab); the note under them when the checkpoint takes no prompt."""
    on = pg.supports_prompts
    with gr.Row():
        prompt = gr.Textbox(
            value="", label="Prompt (optional)", lines=1, max_length=pg.limits.max_text_chars, visible=on, scale=3,
            placeholder=f"e.g. {EXAMPLE_PROMPT}",
            info=(f"the model continues it; empty: unconditional samples. The model reads its first "
                  f"{pg.prompt_tokens} tokens." if on else None))
        guidance = gr.Slider(
            0, pg.max_guidance, value=pg.guidance_default, step=0.1, label="Guidance scale", visible=on, scale=2,
            info="classifier-free guidance w: x0 = x0_c + w (x0_c − x0_u); 0 = no guidance; used with a prompt only")
    if not on:
        gr.Markdown(f"*{UNCONDITIONAL_NOTE}*")
    return prompt, guidance


def with_prompt(prompt: str | None, text: str) -> str:
    """A sample as the tables show it: "prompt → continuation" (just the text without a prompt)."""
    return f"{prompt} → {text}" if prompt else text
