"""Issue 17: shipping. The license, the Space's config, Hub metadata on the model cards, .gitattributes, and
the two publish commands (``python -m app.deploy``, ``python -m train.push``) up to the network, all offline:
dry runs, refusals, the one-line answer without a network, and a pushed folder loading from a hub id."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import ModelCard as HubModelCard
from huggingface_hub import SpaceCard

from app import deploy
from bench.live_app import running_app
from cosmos import hub
from cosmos.card import ModelCard
from train import push

REPO = Path(__file__).resolve().parent.parent
ASSETS = ["assets/cosmos-cpu-small", "assets/cosmos-story-cpu"]


def _run(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=300)


# --- license, Space config, .gitattributes ------------------------------------------------------------
def test_the_code_has_a_license_and_the_space_config_names_it():
    assert (REPO / "LICENSE").read_text().lstrip().startswith("Apache License")
    space = SpaceCard.load(REPO / "README.md")
    assert space.data.license == "apache-2.0" and space.data.sdk == "gradio" and space.data.app_file == "app.py"
    pin = re.search(r"^gradio==(\S+)", (REPO / "requirements.txt").read_text(), flags=re.M).group(1)
    assert str(space.data.sdk_version) == pin


def test_gitattributes_keeps_weights_and_other_binaries_in_lfs():
    rules = {line.split()[0]: line.split()[1:] for line in (REPO / ".gitattributes").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    for pattern in ("*.safetensors", "*.bin", "*.pt", "*.npz", "*.png"):
        assert {"filter=lfs", "diff=lfs", "merge=lfs", "-text"} <= set(rules[pattern]), pattern


# --- model cards with Hub metadata ---------------------------------------------------------------------
@pytest.mark.parametrize("folder", ASSETS)
def test_shipped_cards_carry_hub_metadata_from_their_own_numbers(folder):
    card = ModelCard.load(REPO / folder)
    parsed = HubModelCard.load(REPO / folder / "README.md")          # huggingface_hub's own parser, offline
    data = parsed.data
    assert data.license == "apache-2.0" and data.library_name == "cosmos-playground"
    assert data.datasets == ["roneneldan/TinyStories"] and data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.pipeline_tag == "text-generation" and "text-diffusion" in data.tags
    measured = {(r.dataset_name, r.metric_value) for r in data.eval_results}
    assert measured == {(r.data, r.accuracy) for r in card.reconstruction}
    assert "CDLA-Sharing-1.0" in parsed.text and "Apache-2.0" in parsed.text   # the weights' license, and why


def test_a_card_without_a_hub_encoder_or_hub_data_has_no_base_model_or_datasets(tmp_path):
    card = ModelCard.load(REPO / ASSETS[0])
    card.encoder = str(tmp_path)                                     # a local folder has no hub id
    for stage in card.stages:
        for source in stage.data:
            source.path = "my-data/train.jsonl"
    data = HubModelCard(card.to_markdown()).data
    assert data.base_model is None and data.datasets is None and data.license == "apache-2.0"
    card.encoder = "bert-base-cased"                                  # the paper's encoder: its own hub id
    assert HubModelCard(card.to_markdown()).data.base_model == "bert-base-cased"


# --- the Space -------------------------------------------------------------------------------------------
def test_space_dry_run_lists_exactly_what_the_app_needs(capsys):
    assert deploy.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    files, target = deploy.space_files()
    assert target == "assets/cosmos-cpu-small"
    tops = {f.path_in_repo.split("/")[0] for f in files}
    assert tops == {"README.md", "LICENSE", ".gitattributes", "requirements.txt", "app.py", "app", "cosmos", "assets"}
    assert {f.path_in_repo.split("/")[1] for f in files if f.path_in_repo.startswith("assets/")} == {"cosmos-cpu-small"}
    assert not any("__pycache__" in f.path_in_repo or f.path_in_repo.endswith(".pyc") for f in files)
    for f in files:
        assert f.path_in_repo in out
    assert f"{sum(f.size for f in files) / 1024**2:.2f} MB  total, {len(files)} files" in out
    assert "dry run: nothing was sent" in out


def test_the_space_files_alone_run_the_playground(tmp_path):
    """Copied on their own (as the Space gets them), the files load the checkpoint and build the app."""
    files, _ = deploy.space_files()
    for f in files:
        (tmp_path / f.path_in_repo).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f.source, tmp_path / f.path_in_repo)
    code = ("from app import load_playground, build_demo; pg = load_playground('assets/cosmos-cpu-small'); "
            "build_demo(pg); print('built', pg.pipe.generate(1, steps=2, seed=0).latents.shape)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "built torch.Size([1, 8, 384])" in done.stdout


def test_a_checkpoint_outside_the_repository_lands_under_assets(tmp_path):
    shutil.copytree(REPO / ASSETS[1], tmp_path / "my-cosmos")
    files, target = deploy.space_files(tmp_path / "my-cosmos")
    assert target == "assets/my-cosmos"
    assert "assets/my-cosmos/model_index.json" in {f.path_in_repo for f in files}
    with pytest.raises(hub.HubError, match="not a pipeline folder"):
        deploy.space_files(tmp_path)


def test_space_refuses_what_the_hub_or_a_space_build_would_reject(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hub, "MAX_FILE_BYTES", 1024**2)               # every weight file is now "too large"
    assert deploy.main(["--dry-run"]) == 1
    assert "over the Hub's" in capsys.readouterr().err
    readme = tmp_path / "README.md"
    readme.write_text("---\nsdk: streamlit\napp_file: main.py\nsdk_version: 1.0\n---\n# x\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("gradio>=5\n")
    found = deploy.space_config_problems([hub.UploadFile("README.md", readme),
                                          hub.UploadFile("requirements.txt", requirements)])
    assert any("sdk must be 'gradio'" in p for p in found) and any("app_file 'main.py'" in p for p in found)
    assert any("no license" in p for p in found) and any("must pin gradio" in p for p in found)
    assert deploy.space_config_problems([]) == ["README.md is missing: its YAML front matter is the Space's "
                                                "configuration"]


def test_on_a_space_a_checkpoint_that_cannot_load_falls_back_to_the_embedded_one_with_a_note():
    with running_app(["--checkpoint", "/nonexistent/hub-checkpoint"], env={"SPACE_ID": "someone/cosmos"}) as app:
        config = urllib.request.urlopen(app.url.rstrip("/") + "/config", timeout=30).read().decode()
    assert "Could not load the checkpoint" in config and "/nonexistent/hub-checkpoint" in config
    assert "assets/cosmos-cpu-small" in config


# --- a checkpoint to a model repo --------------------------------------------------------------------------
def test_push_dry_run_renders_the_card_for_the_repo(capsys):
    assert push.main([ASSETS[1], "--repo", "someone/story", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing was sent" in out and "diffusion_pytorch_model.safetensors" in out
    files = {f.path_in_repo: f for f in push.checkpoint_files(REPO / ASSETS[1], "someone/story")}
    readme = files["README.md"].source.decode()
    assert 'CosmosPipeline.from_pretrained("someone/story")' in readme
    assert HubModelCard(readme).data.license == "apache-2.0"
    assert set(files) >= {"model_index.json", "card.json", "autoencoder/config.json", "denoiser/config.json"}


def test_push_refuses_a_folder_that_does_not_load(tmp_path, capsys):
    shutil.copytree(REPO / ASSETS[1], tmp_path / "broken")
    (tmp_path / "broken" / "denoiser" / "config.json").write_text("{not json")
    assert push.main([str(tmp_path / "broken"), "--repo", "someone/broken", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "not a checkpoint to publish" in err


def test_a_pushed_folder_loads_by_its_repo_id(tmp_path):
    """What push sends, laid out as the Hub cache holds a downloaded repo, loads with from_pretrained(repo id)."""
    snapshot = tmp_path / "hub" / "models--someone--story" / "snapshots" / ("0" * 40)
    for f in push.checkpoint_files(REPO / ASSETS[1], "someone/story"):
        target = snapshot / f.path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.source if isinstance(f.source, bytes) else f.source.read_bytes())
    (tmp_path / "hub" / "models--someone--story" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--story" / "refs" / "main").write_text("0" * 40)
    code = ("from cosmos import CosmosPipeline; p = CosmosPipeline.from_pretrained('someone/story'); "
            "print(p.supports_prompts, p.generate(prompt='The cat sat.', steps=2, seed=0).latents.shape)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True torch.Size([1, 8, 384])"


# --- no network: one line ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["app.deploy", "--space", "someone/cosmos"],
                                     ["train.push", ASSETS[1], "--repo", "someone/story"]])
def test_without_a_network_both_commands_say_so_in_one_line(command):
    done = _run(*command, env={"HF_TOKEN": "hf_test"})
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "HF_HUB_OFFLINE is set: nothing was uploaded" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_a_token_the_commands_say_where_to_get_one(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))                      # no stored `hf auth login` token either
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    assert deploy.main(["--space", "someone/cosmos"]) == 2
    assert "no Hugging Face token" in capsys.readouterr().err
