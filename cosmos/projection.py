"""Latent map: a 2-D UMAP (McInnes et al. 2018) of a reference set's latents, for looking at the space.

Each point is one text's whole latent z (N, d), flattened to N*d numbers, in the autoencoder's space
(the space the decoder reads and the diffusion model generates, before its normalisation).

Stored beside a pipeline's components, without pickle:

    latent_map/map.safetensors   latents (M, N, d) float16, coords (M, 2) float32
    latent_map/map.json          texts, sources, UMAP settings, fingerprint of the autoencoder weights

A fitted ``umap.UMAP`` can only be saved by pickling it, so ``transform`` (placing new latents on
the map) refits on first use: with a fixed ``random_state`` umap-learn is deterministic, so the
refit reproduces the stored coordinates (checked; if a different umap/numba build moves them, the
refit's coordinates replace the stored ones and ``refit_moved`` says so). The stored coordinates
make the map drawable at once, before umap is even imported.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .checkpoint import CheckpointError

MAP_DIR = "latent_map"
MAP_VERSION = 1


class LatentMapError(CheckpointError):
    """A latent map folder is missing, broken, or belongs to other weights."""


@dataclass(frozen=True)
class UmapSettings:
    n_neighbors: int = 15       # size of the neighbourhood UMAP preserves (umap-learn's default)
    min_dist: float = 0.1       # how tightly points may pack in 2-D (umap-learn's default)
    metric: str = "euclidean"
    random_state: int = 0       # fixed seed: deterministic (single-threaded) fit, reproducible refits


def evenly_spaced(n: int, k: int) -> list[int]:
    """``min(n, k)`` indices spread evenly over ``range(n)``, first and last included."""
    k = min(n, k)
    return [round(i * (n - 1) / (k - 1)) for i in range(k)] if k > 1 else list(range(k))


def autoencoder_fingerprint(autoencoder: torch.nn.Module) -> str:
    """sha256 of the autoencoder's tensors (names, shapes, fp16 values): ties a map to its weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(autoencoder.state_dict().items()):
        value = tensor.detach().to("cpu", torch.float16 if tensor.is_floating_point() else tensor.dtype)
        digest.update(f"{name}{tuple(value.shape)}".encode())
        digest.update(value.contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _features(latents: torch.Tensor) -> np.ndarray:
    """(M, N, d) latents -> (M, N*d) float32 UMAP inputs."""
    return latents.detach().to("cpu", torch.float32).flatten(1).numpy()


def _fit_umap(features: np.ndarray, settings: UmapSettings):
    import umap  # imported here: slow (numba) and only needed by the map

    n_neighbors = min(settings.n_neighbors, len(features) - 1)
    reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=settings.min_dist, metric=settings.metric,
                        random_state=settings.random_state, n_jobs=1)
    return reducer.fit(features)


@dataclass
class LatentMap:
    texts: list[str]
    sources: list[str]          # a group label per point (e.g. "prose: Moby-Dick", "model sample")
    latents: torch.Tensor       # (M, N, d) autoencoder-space latents of ``texts``
    coords: np.ndarray          # (M, 2) UMAP coordinates
    settings: UmapSettings = field(default_factory=UmapSettings)
    fingerprint: str = ""       # autoencoder_fingerprint of the weights that made ``latents``
    refit_moved: bool = False   # the refit for transform() did not reproduce the stored coords

    def __post_init__(self) -> None:
        m = len(self.texts)
        if len(self.sources) != m or self.latents.ndim != 3 or self.latents.shape[0] != m \
                or self.coords.shape != (m, 2):
            raise LatentMapError(f"latent map parts disagree: {m} texts, {len(self.sources)} sources, latents "
                                 f"{tuple(self.latents.shape)}, coords {self.coords.shape}")
        if m < 3:
            raise LatentMapError(f"a latent map needs at least 3 points, got {m}")
        self._reducer = None
        self._lock = threading.Lock()

    @classmethod
    def fit(cls, latents: torch.Tensor, texts: list[str], sources: list[str],
            settings: UmapSettings = UmapSettings(), fingerprint: str = "") -> "LatentMap":
        """Fit UMAP on (M, N, d) latents; the fitted reducer is kept for ``transform``."""
        latents = latents.detach().cpu().to(torch.float16).float()  # as stored, so refits see the same numbers
        reducer = _fit_umap(_features(latents), settings)
        lmap = cls(list(texts), list(sources), latents,
                   np.asarray(reducer.embedding_, dtype=np.float32), settings, fingerprint)
        lmap._reducer = reducer
        return lmap

    @property
    def ready(self) -> bool:
        """Whether ``transform`` can run without fitting first."""
        return self._reducer is not None

    def prepare(self) -> None:
        """Refit the reducer (deterministic, a few seconds) so ``transform`` works. Thread-safe."""
        with self._lock:
            if self._reducer is not None:
                return
            reducer = _fit_umap(_features(self.latents), self.settings)
            refit = np.asarray(reducer.embedding_, dtype=np.float32)
            if not np.allclose(refit, self.coords, atol=1e-3 * (1.0 + np.abs(self.coords).max())):
                self.coords, self.refit_moved = refit, True
            self._reducer = reducer

    def transform(self, latents: torch.Tensor) -> np.ndarray:
        """(K, N, d) latents -> (K, 2) map coordinates (UMAP ``transform``)."""
        if tuple(latents.shape[1:]) != tuple(self.latents.shape[1:]):
            raise ValueError(f"latents of shape {tuple(latents.shape)} do not fit a map of "
                             f"{tuple(self.latents.shape[1:])} latents")
        if latents.shape[0] == 0:
            return np.zeros((0, 2), dtype=np.float32)
        self.prepare()
        return np.asarray(self._reducer.transform(_features(latents)), dtype=np.float32)

    # --- storage -----------------------------------------------------------------------------
    def save(self, pipeline_folder: str | Path) -> Path:
        folder = Path(pipeline_folder) / MAP_DIR
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"latents": self.latents.to(torch.float16).contiguous(),
                   "coords": torch.from_numpy(np.ascontiguousarray(self.coords, dtype=np.float32))},
                  str(folder / "map.safetensors"))
        meta = {"format_version": MAP_VERSION, "fingerprint": self.fingerprint, "umap": asdict(self.settings),
                "points": [{"text": t, "source": s} for t, s in zip(self.texts, self.sources)]}
        (folder / "map.json").write_text(json.dumps(meta, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, pipeline_folder: str | Path, fingerprint: str | None = None) -> "LatentMap":
        """Read ``<pipeline_folder>/latent_map``; with ``fingerprint``, refuse a map of other weights."""
        folder = Path(pipeline_folder) / MAP_DIR
        if not (folder / "map.json").is_file() or not (folder / "map.safetensors").is_file():
            raise LatentMapError(f"{folder} has no latent map (map.json + map.safetensors); build one with "
                                 f"`python -m train.latent_map --pipeline {Path(pipeline_folder).as_posix()} --texts REFERENCE.jsonl`")
        try:
            meta = json.loads((folder / "map.json").read_text(encoding="utf-8"))
            tensors = load_file(str(folder / "map.safetensors"))
        except (OSError, ValueError, RuntimeError, SafetensorError) as err:
            raise LatentMapError(f"{folder}: cannot read the latent map ({err}); rebuild it with "
                                 f"`python -m train.latent_map --pipeline {Path(pipeline_folder).as_posix()} --texts REFERENCE.jsonl`") from err
        if not isinstance(meta, dict) or meta.get("format_version") != MAP_VERSION:
            raise LatentMapError(f"{folder / 'map.json'}: not a version-{MAP_VERSION} latent map")
        if fingerprint is not None and meta.get("fingerprint") != fingerprint:
            raise LatentMapError(f"{folder} was built for other autoencoder weights (fingerprint "
                                 f"{meta.get('fingerprint')!r}, loaded weights {fingerprint!r}); rebuild it with "
                                 f"`python -m train.latent_map --pipeline {Path(pipeline_folder).as_posix()} --texts REFERENCE.jsonl`")
        try:
            points = meta["points"]
            settings = UmapSettings(**meta["umap"])
            return cls([p["text"] for p in points], [p["source"] for p in points],
                       tensors["latents"].float(), tensors["coords"].numpy().astype(np.float32),
                       settings, meta["fingerprint"])
        except (KeyError, TypeError) as err:
            raise LatentMapError(f"{folder}: latent map files are incomplete ({err!r} missing or malformed)") from err
