"""Training: one entry point per stage, each driven by a preset in ``train/configs/``.

    python -m train.autoencoder  --config cpu-small   # 1. compressor + decoder
    python -m train.latent_stats --config cpu-small   # 2. latents of the diffusion data + their statistics
    python -m train.diffusion    --config cpu-small   # 3. the latent denoiser (EMA)
    python -m train.export       --config cpu-small --out assets/cosmos-cpu-small   # 4. pipeline folder
"""
