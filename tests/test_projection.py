"""The latent map (cosmos.projection) and its builder (train.latent_map): fit / save / load round trips
without pickle, placement of new points on the stored layout with no refit (umap-learn's transform
initialisation, deterministic across processes and thread counts), one clear LatentMapError per way the stored
files can be broken, weight fingerprints, and the reference-set helpers and CLI. UMAP fits take
seconds, so the maps are module-scoped and few."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cosmos import CheckpointError, CosmosPipeline
from cosmos.projection import MAP_DIR, MAP_VERSION, LatentMap, LatentMapError, autoencoder_fingerprint
from train import latent_map as builder

from conftest import TINY_L, make_tiny_pipeline

CLUSTERS, PER_CLUSTER, N, D = 3, 10, 4, 8
FINGERPRINT = "0123456789abcdef"


def cluster_latents(per_cluster: int, seed: int) -> torch.Tensor:
    """(CLUSTERS * per_cluster, N, D) latents around three well separated centres, in cluster order."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(CLUSTERS, N * D) * 20.0
    points = [centres[c] + torch.randn(per_cluster, N * D, generator=g) for c in range(CLUSTERS)]
    return torch.cat(points).view(-1, N, D)


TEXTS = [f"text {i}: naïve “quoted” \\ <b>{i}</b>\nsecond line" for i in range(CLUSTERS * PER_CLUSTER)]
SOURCES = [f"group {c}" for c in range(CLUSTERS) for _ in range(PER_CLUSTER)]


@pytest.fixture(scope="module")
def fitted() -> LatentMap:
    return LatentMap.fit(cluster_latents(PER_CLUSTER, 0), TEXTS, SOURCES, fingerprint=FINGERPRINT)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    assert fitted.save(folder) == folder / MAP_DIR
    return folder


@pytest.fixture(scope="module")
def loaded(saved) -> LatentMap:
    return LatentMap.load(saved, fingerprint=FINGERPRINT)


@pytest.fixture
def no_umap(monkeypatch):
    """Any attempt to fit or refit UMAP fails the test."""
    import umap

    def refuse(*args, **kwargs):
        raise AssertionError("UMAP was refitted")
    monkeypatch.setattr(umap.UMAP, "fit", refuse)
    monkeypatch.setattr(umap.UMAP, "fit_transform", refuse)


@pytest.fixture
def broken(saved, tmp_path):
    """A fresh copy of the saved map, to break."""
    folder = tmp_path / "broken"
    shutil.copytree(saved / MAP_DIR, folder / MAP_DIR)
    return folder


# --- fit, save, load -------------------------------------------------------------------------
def test_fit(fitted):
    assert fitted.coords.shape == (CLUSTERS * PER_CLUSTER, 2) and fitted.coords.dtype == np.float32
    assert np.isfinite(fitted.coords).all()
    # latents are kept as they will be stored (fp16 values), so placements see the numbers the fit saw
    assert torch.equal(fitted.latents, cluster_latents(PER_CLUSTER, 0).half().float())


def test_saved_files(fitted, saved):
    tensors = load_file(str(saved / MAP_DIR / "map.safetensors"))
    assert sorted(tensors) == ["coords", "latents"]
    assert tensors["latents"].dtype == torch.float16 and tensors["latents"].shape == (30, N, D)
    assert tensors["coords"].dtype == torch.float32 and np.array_equal(tensors["coords"].numpy(), fitted.coords)
    meta = json.loads((saved / MAP_DIR / "map.json").read_text(encoding="utf-8"))
    assert meta["format_version"] == MAP_VERSION and meta["fingerprint"] == FINGERPRINT
    assert meta["umap"] == {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean", "random_state": 0}
    assert meta["points"][0] == {"text": TEXTS[0], "source": SOURCES[0]}
    assert not list((saved / MAP_DIR).glob("*.pkl")) and len(list((saved / MAP_DIR).iterdir())) == 2


def test_load_round_trip(fitted, saved):
    lmap = LatentMap.load(saved)
    assert lmap.texts == TEXTS and lmap.sources == SOURCES
    assert np.array_equal(lmap.coords, fitted.coords) and lmap.coords.dtype == np.float32
    assert lmap.latents.dtype == torch.float32 and torch.equal(lmap.latents, fitted.latents)
    assert lmap.settings == fitted.settings and lmap.fingerprint == FINGERPRINT
    assert LatentMap.load(str(saved), fingerprint=FINGERPRINT).texts == TEXTS      # str paths too


def test_save_overwrites(fitted, tmp_path):
    fitted.save(tmp_path)
    other = LatentMap(TEXTS[:3], ["a", "b", "c"], fitted.latents[:3], fitted.coords[:3], fingerprint="x")
    other.save(tmp_path)
    assert LatentMap.load(tmp_path).texts == TEXTS[:3]


def test_transform_places_new_points_by_their_cluster(fitted, loaded, no_umap):
    new = cluster_latents(2, seed=1)                                # 2 new points per cluster
    coords = loaded.transform(new)
    assert coords.shape == (6, 2) and coords.dtype == np.float32 and np.isfinite(coords).all()
    centroids = np.stack([fitted.coords[c * PER_CLUSTER:(c + 1) * PER_CLUSTER].mean(0) for c in range(CLUSTERS)])
    nearest = np.linalg.norm(coords[:, None] - centroids[None], axis=-1).argmin(1)
    assert nearest.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.array_equal(coords, loaded.transform(new)) and np.array_equal(coords, fitted.transform(new))


def test_transform_starts_at_umap_learns_transform_initialisation(fitted):
    """umap-learn's own membership graph for the new points (transform_mode="graph"), averaged over the
    stored coordinates as its init_graph_transform does, is where ours starts them (before refinement)."""
    import umap

    new = cluster_latents(2, seed=1)
    features = fitted.latents.flatten(1).numpy()
    reducer = umap.UMAP(n_neighbors=15, random_state=0, n_jobs=1).fit(features)
    reducer.transform_mode = "graph"
    graph = reducer.transform(new.flatten(1).numpy()).tocsr()        # (6, 30) membership strengths
    expected = (graph @ reducer.embedding_) / np.asarray(graph.sum(1))
    ours = LatentMap(TEXTS, SOURCES, fitted.latents, reducer.embedding_.astype(np.float32))
    assert np.allclose(ours.transform(new, refine_epochs=0), expected, atol=1e-4 * (1 + np.abs(expected).max()))


def test_the_shown_map_and_placements_follow_the_stored_coords_not_a_refit(fitted, saved, tmp_path, no_umap):
    """A refit on another machine (here: another layout, as another random_state gives) changes nothing:
    the stored coordinates are shown, and new points are placed relative to them."""
    flipped = LatentMap(fitted.texts, fitted.sources, fitted.latents, -fitted.coords[:, ::-1] + 100.0,
                        fitted.settings, fitted.fingerprint)
    flipped.save(tmp_path)
    loaded = LatentMap.load(tmp_path)
    assert np.array_equal(loaded.coords, flipped.coords)
    new = cluster_latents(2, seed=1)
    mirrored = lambda xy: -xy[:, ::-1] + 100.0  # noqa: E731
    # the start (a weighted mean of stored points) follows the stored layout exactly; the refinement's 100
    # float32 epochs follow it to rounding, which differs by machine: within 1% of the map's extent
    assert np.allclose(loaded.transform(new, refine_epochs=0), mirrored(fitted.transform(new, refine_epochs=0)), atol=1e-4)
    extent = float(np.ptp(fitted.coords, axis=0).max())
    assert np.abs(loaded.transform(new) - mirrored(fitted.transform(new))).max() < 0.01 * extent


def test_a_reference_latent_lands_on_its_stored_point(fitted, loaded, no_umap):
    assert np.array_equal(loaded.transform(loaded.latents), loaded.coords)
    # the unrounded float32 latents too (the app encodes text in float32; the map stores float16)
    assert np.array_equal(loaded.transform(cluster_latents(PER_CLUSTER, 0)), loaded.coords)
    # and a point between two references lands between them, not on either
    mid = loaded.transform((loaded.latents[:1] + loaded.latents[1:2]) / 2)
    assert not np.isclose(mid, loaded.coords[:2]).all(axis=1).any()


def test_refinement_moves_towards_umap_learns_transform(fitted):
    """The deterministic refinement stays as near umap-learn's own (stochastic) transform as that transform
    with another seed lands to itself. (Whether it lands nearer than the start depends on the machine's
    floating point on these few synthetic points; bench/latent_map.py measures it on real latents.)"""
    import umap

    new = cluster_latents(2, seed=1)
    reducer = umap.UMAP(n_neighbors=15, random_state=0, n_jobs=1).fit(fitted.latents.flatten(1).numpy())
    theirs = reducer.transform(new.flatten(1).numpy())
    lmap = LatentMap(TEXTS, SOURCES, fitted.latents, reducer.embedding_.astype(np.float32))
    start, refined = lmap.transform(new, refine_epochs=0), lmap.transform(new)
    gap = lambda a, b: float(np.linalg.norm(a - b, axis=1).mean())  # noqa: E731
    reducer.transform_seed = 7
    spread = gap(reducer.transform(new.flatten(1).numpy()), theirs)  # umap-learn against itself, another seed
    assert gap(refined, theirs) < gap(start, theirs) + spread
    assert gap(refined, theirs) < 2 * spread + 0.1


def test_placement_does_not_depend_on_the_batch(loaded):
    new = cluster_latents(2, seed=1)
    together = loaded.transform(new)
    alone = np.concatenate([loaded.transform(new[i:i + 1]) for i in range(len(new))])
    assert np.allclose(together, alone, rtol=0, atol=1e-6)


def test_placement_is_the_same_in_another_process_with_other_thread_counts(saved, loaded):
    new = cluster_latents(2, seed=1)
    code = ("import sys, numpy as np, torch; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
            "from cosmos.projection import LatentMap; from test_projection import cluster_latents; "
            "print(LatentMap.load(sys.argv[3]).transform(cluster_latents(2, seed=1)).tolist())")
    root = Path(__file__).resolve().parent.parent
    for threads in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
                   PYTHONHASHSEED=threads)
        out = subprocess.run([sys.executable, "-c", code, str(root), str(root / "tests"), str(saved)],
                             capture_output=True, text=True, env=env, check=True, timeout=120)
        assert np.allclose(np.array(json.loads(out.stdout)), loaded.transform(new), rtol=0, atol=1e-5)


def test_transform_of_nothing(saved):
    lmap = LatentMap.load(saved)
    out = lmap.transform(torch.zeros(0, N, D))
    assert out.shape == (0, 2) and out.dtype == np.float32


@pytest.mark.parametrize("shape", [(2, N, D + 1), (2, N + 1, D), (2, N * D), (2, 1, N, D), (N, D)])
def test_transform_rejects_wrong_shapes(saved, shape):
    lmap = LatentMap.load(saved)
    with pytest.raises(ValueError, match=rf"do not fit a map of \({N}, {D}\) latents"):
        lmap.transform(torch.zeros(shape))


# --- broken maps -----------------------------------------------------------------------------
def _rewrite_json(folder, change):
    path = folder / MAP_DIR / "map.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta = change(meta)
    path.write_text(json.dumps(meta), encoding="utf-8")


def test_latent_map_error_is_a_checkpoint_error():
    assert issubclass(LatentMapError, CheckpointError)


def test_wrong_fingerprint_names_the_rebuild_command(saved):
    with pytest.raises(LatentMapError) as excinfo:
        LatentMap.load(saved, fingerprint="ffffffffffffffff")
    message = str(excinfo.value)
    assert "other autoencoder weights" in message and FINGERPRINT in message and "ffffffffffffffff" in message
    assert f"`python -m train.latent_map --pipeline {saved.as_posix()} --texts REFERENCE.jsonl`" in message


@pytest.mark.parametrize("missing", ["map.json", "map.safetensors", MAP_DIR])
def test_missing_files(broken, missing):
    target = broken / MAP_DIR / missing if missing != MAP_DIR else broken / MAP_DIR
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(LatentMapError) as excinfo:
        LatentMap.load(broken)
    assert "has no latent map (map.json + map.safetensors)" in str(excinfo.value)
    assert f"python -m train.latent_map --pipeline {broken.as_posix()}" in str(excinfo.value)


def test_missing_pipeline_folder(tmp_path):
    with pytest.raises(LatentMapError, match="has no latent map"):
        LatentMap.load(tmp_path / "nowhere")


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe\x00garbage", b'{"format_version": 1,'])
def test_garbage_map_json(broken, content):
    (broken / MAP_DIR / "map.json").write_bytes(content)
    with pytest.raises(LatentMapError, match="cannot read the latent map"):
        LatentMap.load(broken)


@pytest.mark.parametrize("meta", [[], "a string", 3, None, {}, {"format_version": 2}, {"format_version": "1"}])
def test_not_a_version_1_map(broken, meta):
    (broken / MAP_DIR / "map.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(LatentMapError, match="not a version-1 latent map"):
        LatentMap.load(broken)


def test_future_format_version(broken):
    _rewrite_json(broken, lambda meta: {**meta, "format_version": MAP_VERSION + 1})
    with pytest.raises(LatentMapError, match="not a version-1 latent map"):
        LatentMap.load(broken, fingerprint=FINGERPRINT)


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_truncated_safetensors(broken, keep):
    path = broken / MAP_DIR / "map.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(LatentMapError, match="cannot read the latent map"):
        LatentMap.load(broken)


def test_safetensors_that_is_not_a_file(broken):
    path = broken / MAP_DIR / "map.safetensors"
    path.unlink()
    path.mkdir()
    with pytest.raises(LatentMapError, match="has no latent map"):
        LatentMap.load(broken)


@pytest.mark.parametrize("change", [
    lambda m: {**m, "points": m["points"][:-1]},                                  # one text fewer
    lambda m: {**m, "points": m["points"] + [{"text": "x", "source": "y"}]},      # one text more
], ids=["fewer-points", "more-points"])
def test_mismatched_counts(broken, change):
    _rewrite_json(broken, change)
    with pytest.raises(LatentMapError, match="latent map parts disagree: (29|31) texts, (29|31) sources"):
        LatentMap.load(broken)


@pytest.mark.parametrize("tensors", [
    lambda t: {"latents": t["latents"][:-1], "coords": t["coords"]},
    lambda t: {"latents": t["latents"], "coords": t["coords"][:-1]},
    lambda t: {"latents": t["latents"], "coords": t["coords"][:, :1].contiguous()},
    lambda t: {"latents": t["latents"].flatten(1), "coords": t["coords"]},
], ids=["latents-fewer", "coords-fewer", "coords-1d", "latents-2d"])
def test_mismatched_tensors(broken, tensors):
    path = broken / MAP_DIR / "map.safetensors"
    save_file(tensors(load_file(str(path))), str(path))
    with pytest.raises(LatentMapError, match="latent map parts disagree"):
        LatentMap.load(broken)


@pytest.mark.parametrize("change", [
    lambda m: {k: v for k, v in m.items() if k != "points"},
    lambda m: {k: v for k, v in m.items() if k != "umap"},
    lambda m: {k: v for k, v in m.items() if k != "fingerprint"},
    lambda m: {**m, "umap": {**m["umap"], "spread": 2.0}},
    lambda m: {**m, "umap": "default"},
    lambda m: {**m, "points": 5},
    lambda m: {**m, "points": ["just text"] * len(m["points"])},
    lambda m: {**m, "points": [{"text": p["text"]} for p in m["points"]]},
], ids=["no-points", "no-umap", "no-fingerprint", "unknown-setting", "umap-not-object", "points-not-list",
        "points-not-objects", "points-without-source"])
def test_incomplete_map_json(broken, change):
    _rewrite_json(broken, change)
    with pytest.raises(LatentMapError, match="latent map files are incomplete"):
        LatentMap.load(broken)


def test_missing_tensor(broken):
    path = broken / MAP_DIR / "map.safetensors"
    save_file({"latents": load_file(str(path))["latents"]}, str(path))
    with pytest.raises(LatentMapError, match="latent map files are incomplete"):
        LatentMap.load(broken)


def test_too_few_points():
    with pytest.raises(LatentMapError, match="at least 3 points, got 2"):
        LatentMap(["a", "b"], ["s", "s"], torch.zeros(2, N, D), np.zeros((2, 2), np.float32))


# --- fingerprints ----------------------------------------------------------------------------
def test_fingerprint_follows_the_weights(tiny_pipeline, tiny_encoder, tiny_encoder_dir):
    ae = tiny_pipeline.autoencoder
    first = autoencoder_fingerprint(ae)
    assert len(first) == 16 and set(first) <= set("0123456789abcdef") and autoencoder_fingerprint(ae) == first
    same = make_tiny_pipeline(tiny_encoder, tiny_encoder_dir).autoencoder
    assert autoencoder_fingerprint(same) == first                   # equal weights, equal fingerprint
    name, weight = next((n, p) for n, p in ae.named_parameters() if p.numel() > 1)
    with torch.no_grad():
        weight.view(-1)[-1] += 0.5
    changed = autoencoder_fingerprint(ae)
    assert changed != first
    with torch.no_grad():
        weight.view(-1)[-1] -= 0.5
    assert autoencoder_fingerprint(ae) == first


def test_fingerprint_covers_buffers(tiny_pipeline):
    ae = tiny_pipeline.autoencoder
    first = autoencoder_fingerprint(ae)
    buffers = dict(ae.named_buffers())
    assert buffers, "the autoencoder should carry its feature statistics as buffers"
    with torch.no_grad():
        next(iter(buffers.values())).view(-1)[0] += 1.0
    assert autoencoder_fingerprint(ae) != first


def test_fingerprint_survives_an_fp16_export(tiny_pipeline, tmp_path):
    """A map built from fp32 weights stays valid for the fp16 export of the same weights."""
    tiny_pipeline.save_pretrained(tmp_path, dtype=torch.float16)
    loaded = CosmosPipeline.from_pretrained(tmp_path, encoder=tiny_pipeline.encoder)
    assert autoencoder_fingerprint(loaded.autoencoder) == autoencoder_fingerprint(tiny_pipeline.autoencoder)


# --- train.latent_map ------------------------------------------------------------------------
def _jsonl(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    return path


def test_read_reference_groups_and_caps(tmp_path):
    records = ([{"text": f"moby {i}", "source": f"moby-dick:chapter {i}"} for i in range(10)]
               + [{"text": f"sotu {i}", "source": "sotu:1990"} for i in range(3)]
               + [{"text": f"other {i}", "source": "gutenberg:x"} for i in range(2)]
               + [{"text": "no source"}])
    path = _jsonl(tmp_path / "ref.jsonl", records[::2] + records[1::2])     # families interleaved
    picked = builder.read_reference(path, per_group=4)
    labels = [label for _, label in picked]
    assert labels == sorted(labels)
    counts = {label: labels.count(label) for label in labels}
    assert counts == {"prose: Moby-Dick": 4, "prose: State of the Union": 3, "prose: gutenberg": 2,
                      "prose: text": 1}
    assert all(text.split()[0] == {"prose: Moby-Dick": "moby", "prose: State of the Union": "sotu",
                                   "prose: gutenberg": "other", "prose: text": "no"}[label]
               for text, label in picked)
    moby = [text for text, label in picked if label == "prose: Moby-Dick"]
    assert len(set(moby)) == 4                                       # spread out, no repeats
    assert builder.read_reference(path, per_group=100) and len(builder.read_reference(path, per_group=100)) == 16


def test_read_reference_spaces_picks_through_a_large_group(tmp_path):
    path = _jsonl(tmp_path / "ref.jsonl", [{"text": f"t{i}", "source": "sotu:x"} for i in range(100)])
    picked = [int(text[1:]) for text, _ in builder.read_reference(path, per_group=10)]
    assert picked == [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]         # evenly spaced, first and last included


def test_read_reference_spreads_picks_when_the_group_is_not_twice_the_cap(tmp_path):
    path = _jsonl(tmp_path / "ref.jsonl", [{"text": f"t{i}", "source": "sotu:x"} for i in range(15)])
    picked = [int(text[1:]) for text, _ in builder.read_reference(path, per_group=10)]
    assert len(picked) == 10 and max(picked) >= 12                   # reaches the end of the file


def test_cut_to_length(tiny_pipeline):
    content = TINY_L - 2                                             # tokens between [CLS] and [SEP]
    words = ["The", "Quick", "Brown", "Fox", "Jumps", "Over", "The", "Lazy", "Dog", "And", "Then", "It",
             "Runs", "Far", "Away", "Into", "The", "Dark", "Night"]
    tok = tiny_pipeline.encoder.tokenizer
    assert all(len(tok.tokenize(w)) == 1 for w in words)            # one token per word here
    short = " ".join(words[:5]) + "."
    assert builder.cut_to_length(tiny_pipeline, short) == short
    exact = " ".join(words[:content])
    assert builder.cut_to_length(tiny_pipeline, exact) == exact       # fits exactly: not cut
    assert builder.cut_to_length(tiny_pipeline, exact + "   ") == exact + "   "
    long = " ".join(words)
    cut = builder.cut_to_length(tiny_pipeline, long)
    assert cut == " ".join(words[:content]) + " …"                  # original casing, marked as cut
    assert not any(tiny_pipeline.tokenize(cut.removesuffix(" …")).truncated)
    assert builder.cut_to_length(tiny_pipeline, "") == ""


@pytest.fixture(scope="module")
def cli_pipeline(tmp_path_factory, tiny_encoder, tiny_encoder_dir):
    folder = tmp_path_factory.mktemp("cli-pipeline")
    make_tiny_pipeline(tiny_encoder, tiny_encoder_dir).save_pretrained(folder)
    return folder


def test_cli_writes_a_map_the_app_can_load(cli_pipeline, tmp_path, capsys):
    long = "One Two Three Four Five Six Seven Eight Nine Ten Eleven Twelve Thirteen Fourteen Fifteen Sixteen"
    records = [{"text": f"The cat number {i} sat.", "source": "moby-dick:1"} for i in range(5)] + \
              [{"text": f"The economy grew {i} percent.", "source": "sotu:2"} for i in range(4)] + \
              [{"text": long, "source": "sotu:3"}]
    texts = _jsonl(tmp_path / "ref.jsonl", records)
    builder.main(["--pipeline", str(cli_pipeline), "--texts", str(texts), "--per-source", "5", "--samples", "3"])
    out = capsys.readouterr().out
    assert out.startswith("latent map of 13 points {'model sample': 3, 'prose: Moby-Dick': 5, "
                          "'prose: State of the Union': 5} written to ")
    pipe = CosmosPipeline.from_pretrained(cli_pipeline)
    lmap = LatentMap.load(cli_pipeline, fingerprint=autoencoder_fingerprint(pipe.autoencoder))
    assert lmap.sources.count(builder.SAMPLE_LABEL) == 3 and lmap.texts[-3:] == pipe.generate(3, seed=0).texts
    assert lmap.texts[:5] == [f"The cat number {i} sat." for i in range(5)]
    (cut,) = [t for t in lmap.texts if t.startswith("One")]
    assert cut.endswith(" …") and long.startswith(cut.removesuffix(" …"))
    # the stored latents are those of the texts as cut (without the marker), fp16-rounded
    i = lmap.texts.index(cut)
    expected = pipe.encode([cut.removesuffix(" …")]).half().float()
    assert torch.allclose(lmap.latents[i], expected[0], atol=1e-3)
    assert torch.allclose(lmap.latents[-3:], pipe.generate(3, seed=0).latents.half().float(), atol=1e-3)


def test_build_without_a_denoiser_has_no_samples(tiny_pipeline):
    tiny_pipeline.denoiser = None
    reference = [(f"sentence number {i} about cats", "a") for i in range(4)] + \
                [(f"sentence number {i} about rain", "b") for i in range(4)]
    lmap = builder.build_latent_map(tiny_pipeline, reference, num_samples=5)
    assert lmap.sources == ["a"] * 4 + ["b"] * 4 and builder.SAMPLE_LABEL not in lmap.sources
    assert lmap.fingerprint == autoencoder_fingerprint(tiny_pipeline.autoencoder)
    assert lmap.coords.shape == (8, 2)


def _run_cli(argv, capsys):
    with pytest.raises(SystemExit) as excinfo:
        builder.main(argv)
    captured = capsys.readouterr()
    return excinfo.value.code, captured.out, captured.err


def test_cli_missing_pipeline_folder(tmp_path, capsys):
    code, out, err = _run_cli(["--pipeline", str(tmp_path / "missing")], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: ")
    assert "does not exist" in lines[0] and "Traceback" not in err


def test_cli_missing_texts(cli_pipeline, tmp_path, capsys):
    code, _, err = _run_cli(["--pipeline", str(cli_pipeline), "--texts", str(tmp_path / "none.jsonl")], capsys)
    assert code == 2 and err.strip().splitlines() == [f"error: reference texts {tmp_path / 'none.jsonl'} not "
                                                      "found (give --texts FILE.jsonl)"]


def test_cli_requires_a_pipeline(capsys):
    code, _, err = _run_cli([], capsys)
    assert code == 2 and "--pipeline" in err
