"""Hugging Face Spaces entry point: load the checkpoint, build the playground, launch it.

    python app.py                                  # the embedded default, assets/cosmos-cpu-small
    python app.py --checkpoint my-cosmos           # any pipeline folder or hub id
    COSMOS_CHECKPOINT=user/repo python app.py      # the same, from the environment (Spaces settings)

On a Hugging Face Space (``SPACE_ID`` is set) it listens on 0.0.0.0:7860, and a checkpoint that cannot be
loaded (e.g. a hub id that cannot be fetched) falls back to the embedded one with a note saying why, so the
Space still starts; elsewhere such a checkpoint is an error.
"""

import argparse
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the app must start offline

from app import DEFAULT_CHECKPOINT, build_demo, checkpoint_from_env, load_playground  # noqa: E402  (after the env default)
from app.ui import CSS  # noqa: E402
from cosmos import CheckpointError, ConfigError, EncoderLoadError  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cosmos playground (Gradio)")
    parser.add_argument("--checkpoint", help="pipeline folder or hub id (default: $COSMOS_CHECKPOINT, else "
                        "the embedded assets/cosmos-cpu-small)")
    on_space = bool(os.environ.get("SPACE_ID"))
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space else "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args(argv)
    checkpoint = checkpoint_from_env(args.checkpoint)
    try:
        playground = load_playground(checkpoint)
    except (CheckpointError, ConfigError, EncoderLoadError) as err:
        if not on_space or checkpoint == str(DEFAULT_CHECKPOINT):
            print(f"error: cannot load checkpoint {checkpoint!r}: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        notice = f"Could not load the checkpoint {checkpoint!r} ({err}); this Space shows its embedded default instead."
        print(f"warning: {notice}", file=sys.stderr)
        playground = load_playground(DEFAULT_CHECKPOINT)
        playground.notice = notice
    print(f"loaded {checkpoint} in {playground.load_seconds:.1f} s", flush=True)
    build_demo(playground).launch(server_name=args.host, server_port=args.port, ssr_mode=False, css=CSS)


if __name__ == "__main__":
    main()
