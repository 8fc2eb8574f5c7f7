"""Latent map: a 2-D UMAP (McInnes et al. 2018) of a reference set's latents, for looking at the space.

Each point is one text's whole latent z (N, d), flattened to N*d numbers, in the autoencoder's space
(the space the decoder reads and the diffusion model generates, before its normalisation).

Stored beside a pipeline's components, without pickle:

    latent_map/map.safetensors   latents (M, N, d) float16, coords (M, 2) float32
    latent_map/map.json          texts, sources, UMAP settings, fingerprint of the autoencoder weights

Placing new latents (``transform``) never refits. A fitted ``umap.UMAP`` can only be saved by
pickling it, and a refit with the same ``random_state`` does *not* reproduce the fit on another CPU
(numba compiles for the processor it runs on), so the map shown is always the stored one and new
points are placed on it by umap-learn's ``transform`` algorithm, computed here from what the map stores:

1. the k = ``n_neighbors`` nearest reference latents, by exact Euclidean search over the stored ones
   (umap-learn searches its NN-descent index: approximate, but exact on a map of a few hundred points);
2. their fuzzy membership strengths exp(-d_j / sigma), sigma found by binary search so that the
   strengths of neighbours 2..k sum to log2(k) (umap-learn's ``smooth_knn_dist`` with the
   transform's local connectivity 0, and ``compute_membership_strengths``);
3. the start: the membership-weighted mean of those neighbours' stored coordinates (umap-learn's
   ``init_graph_transform``);
4. 100 epochs of umap-learn's layout optimisation against the fixed reference coordinates, taken in
   expectation (``refine_layout``): each epoch applies the mean of the moves umap-learn would sample.

What differs from umap-learn's ``transform``: step 4 is deterministic where umap-learn samples edges
and negative examples with a random state (its own placements move by about as much between two
``transform_seed`` values as ours differ from them: ``python -m bench.latent_map``); the floor on sigma
uses each point's own mean neighbour distance (umap-learn uses the batch's, which makes a point's place
depend on the other points of the call); and a latent within float rounding of a stored reference latent
lands exactly on that point's stored coordinates. Everything is float64 NumPy over the stored float16
latents: the same input gives the same place in any process, at any thread count, on any machine (up to
float rounding), and no numba code runs.
"""

from __future__ import annotations

import hashlib
import json
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
    random_state: int = 0       # fixed seed of the fit (single-threaded); placements need no refit


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


def flat_latents(latents: torch.Tensor) -> np.ndarray:
    """(M, N, d) latents -> (M, N*d) float32 UMAP inputs."""
    return latents.detach().to("cpu", torch.float32).flatten(1).numpy()


def fit_umap(features: np.ndarray, settings: UmapSettings):
    import umap  # imported here: slow (numba) and only needed to fit a map

    n_neighbors = min(settings.n_neighbors, len(features) - 1)
    reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=settings.min_dist, metric=settings.metric,
                        random_state=settings.random_state, n_jobs=1)
    return reducer.fit(features)


SNAP_TOLERANCE = 1e-3   # a latent this close to a reference latent (relative to its norm) is that point
_SIGMA_ITERATIONS = 64  # binary-search steps for sigma, as umap-learn's smooth_knn_dist
_SIGMA_TOLERANCE = 1e-5
_MIN_DIST_SCALE = 1e-3  # floor: sigma >= this x the mean neighbour distance (umap-learn's MIN_K_DIST_SCALE)
REFINE_EPOCHS = 100     # umap-learn's transform epochs for a small batch


def membership_strengths(distances: np.ndarray) -> np.ndarray:
    """(K, k) sorted neighbour distances -> (K, k) fuzzy memberships exp(-d / sigma) (module docstring, 2.)."""
    k = distances.shape[1]
    target = np.log2(k)
    lo, hi = np.zeros(len(distances)), np.full(len(distances), np.inf)
    sigma = np.ones(len(distances))
    for _ in range(_SIGMA_ITERATIONS):
        psum = np.exp(-distances[:, 1:] / sigma[:, None]).sum(1)  # neighbour 1 is skipped, as umap-learn does
        done = np.abs(psum - target) < _SIGMA_TOLERANCE
        if done.all():
            break
        too_wide = (psum > target) & ~done
        hi = np.where(too_wide, sigma, hi)
        lo = np.where(~too_wide & ~done, sigma, lo)
        sigma = np.where(done, sigma, np.where(np.isinf(hi), sigma * 2.0, (lo + hi) / 2.0))
    sigma = np.maximum(sigma, _MIN_DIST_SCALE * distances.mean(1))
    return np.exp(-distances / sigma[:, None])


def curve_parameters(min_dist: float, spread: float = 1.0) -> tuple[float, float]:
    """(a, b) of UMAP's low-dimensional similarity 1 / (1 + a d^(2b)), fitted as umap-learn's find_ab_params."""
    from scipy.optimize import curve_fit

    x = np.linspace(0, spread * 3, 300)
    y = np.where(x < min_dist, 1.0, np.exp(-(x - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), x, y)
    return float(a), float(b)


def refine_layout(coords: np.ndarray, reference: np.ndarray, nearest: np.ndarray, weights: np.ndarray,
                  epochs: int, a: float, b: float, negative_rate: int = 5, alpha: float = 0.25) -> np.ndarray:
    """umap-learn's transform optimisation in expectation: deterministic, the reference points fixed.

    umap-learn samples each edge (i, j) about w_ij / max_j w_ij times an epoch, pulls point i towards
    reference j, and pushes it away from ``negative_rate`` uniformly drawn reference points per edge,
    each move clipped to [-4, 4] per coordinate, the step alpha falling linearly from 1/4 to 0 over
    100 epochs. Here each epoch applies the *expected* move: the attractions weighted by w_ij / max w,
    and negative_rate x sum_j (w_ij / max w) times the mean repulsion over all reference points. New
    points never interact, so a point's place does not depend on the other points of the call.
    coords (K, 2) start; reference (M, 2); nearest, weights (K, k) -> (K, 2).
    """
    rate = weights / weights.max(1, keepdims=True)                              # (K, k) edge samples / epoch
    rate = np.where(rate < 1.0 / max(epochs, 1), 0.0, rate)                     # umap-learn drops rarer edges
    negatives = negative_rate * rate.sum(1, keepdims=True)                      # (K, 1)
    y = coords.copy()
    for epoch in range(epochs):
        step = alpha * (1.0 - epoch / epochs)
        diff = y[:, None] - reference[nearest]                                  # (K, k, 2)
        d2 = (diff ** 2).sum(-1, keepdims=True)
        pull = np.where(d2 > 0, -2 * a * b * np.maximum(d2, 1e-12) ** (b - 1) / (a * d2 ** b + 1), 0.0)
        attract = (rate[..., None] * np.clip(pull * diff, -4, 4)).sum(1)        # (K, 2)
        diff = y[:, None] - reference[None]                                     # (K, M, 2)
        d2 = (diff ** 2).sum(-1, keepdims=True)
        push = np.where(d2 > 0, 2 * b / ((0.001 + d2) * (a * d2 ** b + 1)), 0.0)
        repel = negatives * np.clip(push * diff, -4, 4).mean(1)                 # (K, 2)
        y = y + step * (attract + repel)
    return y


@dataclass
class LatentMap:
    texts: list[str]
    sources: list[str]          # a group label per point (e.g. "prose: Moby-Dick", "model sample")
    latents: torch.Tensor       # (M, N, d) autoencoder-space latents of ``texts``
    coords: np.ndarray          # (M, 2) UMAP coordinates: the map shown, never recomputed
    settings: UmapSettings = field(default_factory=UmapSettings)
    fingerprint: str = ""       # autoencoder_fingerprint of the weights that made ``latents``

    def __post_init__(self) -> None:
        m = len(self.texts)
        if len(self.sources) != m or self.latents.ndim != 3 or self.latents.shape[0] != m \
                or self.coords.shape != (m, 2):
            raise LatentMapError(f"latent map parts disagree: {m} texts, {len(self.sources)} sources, latents "
                                 f"{tuple(self.latents.shape)}, coords {self.coords.shape}")
        if m < 3:
            raise LatentMapError(f"a latent map needs at least 3 points, got {m}")
        self._reference = flat_latents(self.latents).astype(np.float64)          # (M, N*d)

    @classmethod
    def fit(cls, latents: torch.Tensor, texts: list[str], sources: list[str],
            settings: UmapSettings = UmapSettings(), fingerprint: str = "") -> "LatentMap":
        """Fit UMAP on (M, N, d) latents, rounded to float16 first (as stored, so placements see the same
        numbers the fit saw)."""
        latents = latents.detach().cpu().to(torch.float16).float()
        reducer = fit_umap(flat_latents(latents), settings)
        return cls(list(texts), list(sources), latents,
                   np.asarray(reducer.embedding_, dtype=np.float32), settings, fingerprint)

    def transform(self, latents: torch.Tensor, refine_epochs: int = REFINE_EPOCHS) -> np.ndarray:
        """(K, N, d) latents -> (K, 2) coordinates on the stored map (module docstring: no refit)."""
        if tuple(latents.shape[1:]) != tuple(self.latents.shape[1:]):
            raise ValueError(f"latents of shape {tuple(latents.shape)} do not fit a map of "
                             f"{tuple(self.latents.shape[1:])} latents")
        if latents.shape[0] == 0:
            return np.zeros((0, 2), dtype=np.float32)
        nearest, near, weights = self._neighbours(latents)
        coords = (weights[..., None] * self.coords[nearest].astype(np.float64)).sum(1) / weights.sum(1)[:, None]
        coords = refine_layout(coords, self.coords.astype(np.float64), nearest, weights, refine_epochs,
                               *curve_parameters(self.settings.min_dist))
        scale = np.linalg.norm(self._reference[nearest[:, 0]], axis=1)
        snap = near[:, 0] <= SNAP_TOLERANCE * scale                                    # a reference point itself
        coords[snap] = self.coords[nearest[snap, 0]]
        return coords.astype(np.float32)

    def _neighbours(self, latents: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact k nearest reference latents: indices, distances (ascending) and memberships, each (K, k)."""
        queries = flat_latents(latents).astype(np.float64)                                 # (K, N*d)
        squared = ((queries ** 2).sum(1)[:, None] + (self._reference ** 2).sum(1)[None]
                   - 2.0 * queries @ self._reference.T)                                 # (K, M)
        distances = np.sqrt(np.maximum(squared, 0.0))
        k = min(self.settings.n_neighbors, len(self.texts) - 1)
        nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]                  # (K, k)
        near = np.take_along_axis(distances, nearest, axis=1)                          # (K, k), ascending
        return nearest, near, membership_strengths(near)

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
