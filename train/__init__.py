"""Training: one entry point per stage, each driven by a preset in ``train/configs/``.

    python -m train.autoencoder  --config cpu-small   # 1. compressor + decoder
    python -m train.latent_stats --config cpu-small   # 2. latents of the diffusion data + their statistics
    python -m train.diffusion    --config cpu-small   # 3. the latent denoiser (EMA)
    python -m train.export       --config cpu-small --out assets/cosmos-cpu-small   # 4. pipeline folder
    python -m train.ar           --config bench-ar    # the autoregressive baseline (bench/)

Each training stage builds its data and model, then runs the one loop in ``train/loop.py``; where a
run's outputs go is ``train/config.py``'s ``TrainConfig`` (``autoencoder_stage_dir``, ``pipeline_dir``, ...).
"""
