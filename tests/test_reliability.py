"""Reliability (GitHub issue "Reliability"): what the playground does with hostile input, cancelled
work and repeated runs, beyond the happy paths and the 14 bad inputs of ``test_app_api.py``.

1. A bad-input battery against the live app (``python app.py`` on a loopback port, one per module):
   every text field of every endpoint gets empty / blank / 100,000-character / emoji / RTL /
   zero-width / control-character text, lone surrogates (raw JSON ``"\\ud800"``) and invalid UTF-8
   (raw HTTP bytes); every numeric field gets NaN, ±inf (raw REST: gradio_client cannot send them),
   a negative number, 0, 10**30, 1e308, 0.5, a string, null and a bool. Each case must end in a
   refusal that names the field (not gradio's generic message, not a crash report) or in a
   well-formed success; afterwards the server is alive, still answers, and never logged a Traceback.
2. Cancelling a streaming 500-step trajectory stops it early and frees the (single) worker at once.
3. Determinism across processes: the pipeline in two Python subprocesses, and two launches of the app.
4. Properties (hypothesis) of the handler layer, in-process on the tiny test playground: any text and
   any value in a numeric field give a well-formed result or a ``gr.Error`` naming the field.

Texts are never checked for quality (the embedded checkpoint writes repeated words).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gradio as gr
import httpx
import plotly.graph_objects as go
import pytest
import torch
from gradio_client.exceptions import AppError
from hypothesis import HealthCheck, given, settings, strategies as st

from app import Limits, generate_tab, interpolate_tab, latent_map_tab, trajectory_tab, vary_tab
from app.context import MAX_SEED, Produced
from app.plots import hover
from app.trajectory_tab import Trajectory
from bench.live_app import REPO, AppStartError, LiveApp
from conftest import TINY_N
from live_app import module_fixture
from test_app_api import TEXT_A, TEXT_B, call_http, figure_of, new_client, release, rows_of, values

live_app = module_fixture()

CHECKPOINT = REPO / "assets" / "cosmos-cpu-small"
TINY_D = 64                # latent width of the tiny test model (tiny_playground)
MAX_TEXT_CHARS = 2_000     # app.context.Limits defaults: longer text is cut, at most 32 map lines
MAX_MAP_TEXTS = 32
GENERIC = "upstream Gradio app has raised an exception"
CRASH = "Something went wrong"          # user_facing's message for an unexpected (logged) failure


# ================================================================ 1. the bad-input battery (live)

@dataclass(frozen=True)
class Field:
    endpoint: str                  # api name without the slash
    label: str                     # what the refusal must name
    template: tuple                # good values for every input the API takes
    index: int                     # where the value under test goes
    check: Callable[[list, object], None]   # asserts a successful output is well-formed (outputs, value)


def _interpolate_ok(out, _value):
    rows = rows_of(out[0])
    assert [row[0] for row in rows] == [0.0, 0.5, 1.0], rows
    assert all(isinstance(row[1], str) and row[1] for row in rows), rows
    assert re.match(r"3 points by lerp in \d+\.\d\d s: \*\*\d distinct texts\*\*", out[2]), out[2]
    ys = [y for trace in figure_of(out[1])["data"] for y in values(trace["y"])]
    assert len(ys) == 6 and all(math.isfinite(y) for y in ys), ys


def _vary_ok(out, value):
    rows = rows_of(out[0])
    assert [row[0] for row in rows] == ["reconstruction (no noise)", "variation 1"], rows
    assert all(isinstance(row[1], str) and row[1] for row in rows), rows
    strength = value if isinstance(value, float) else 0.5
    assert out[1].startswith(f"1 variation(s): noised to strength {strength:g}, then "), out[1]


def map_lines(text: str) -> list[str]:
    """The lines the map should place for ``text``: surrogates -> '?', stripped, cut, blank lines dropped."""
    text = text.encode("utf-8", "replace").decode("utf-8").strip()
    text = text[:MAX_TEXT_CHARS].strip()
    return [line for line in text.splitlines() if line.strip()][:MAX_MAP_TEXTS]


def _map_ok(out, value):
    expected = map_lines(value)
    assert re.fullmatch(rf"\d+ reference points; placed: your texts \({len(expected)}\)\.", out[1]), out[1]
    (mine,) = [t for t in figure_of(out[0])["data"] if t.get("name") == "your texts"]
    assert mine["hovertext"] == [hover(line) for line in expected]      # the text went there and back intact
    assert all(math.isfinite(x) for x in values(mine["x"]) + values(mine["y"]))


def _generate_ok(out, _value):
    assert len(rows_of(out[0])) == 2 and out[1].startswith("2 samples x 2 steps (DDIM, seed 0)"), out


def _trajectory_ok(out, _value):
    caption = out[3]
    assert caption.startswith("step **2 / 2** · σ(t) = ") and "<br>final sample: " in caption, caption


def _never(out, value):
    pytest.fail(f"accepted {value!r}: {out!r}"[:500])


INTERPOLATE = (TEXT_A, TEXT_B, 3, "lerp")
VARY = (TEXT_A, 0.5, 1, 2, "ddim", 0)
GENERATE = (2, 2, "ddim", 0, "", 1.0)     # + prompt, guidance scale: the raw REST API needs every value
TRAJECTORY = (2, "ddim", 0, "", 1.0)
TEXT_FIELDS = {
    "interpolate-text_a": Field("interpolate", "Text A", INTERPOLATE, 0, _interpolate_ok),
    "interpolate-text_b": Field("interpolate", "Text B", INTERPOLATE, 1, _interpolate_ok),
    "vary-text": Field("vary", "Text", VARY, 0, _vary_ok),
    "latent_map-your_texts": Field("latent_map", "Your texts", ("", ["your texts"]), 0, _map_ok),
}
NUMBER_FIELDS = {
    "generate-samples": Field("generate", "Number of samples", GENERATE, 0, _generate_ok),
    "generate-steps": Field("generate", "Steps", GENERATE, 1, _generate_ok),
    "generate-seed": Field("generate", "Seed", GENERATE, 3, _generate_ok),
    "trajectory-steps": Field("trajectory", "Steps", TRAJECTORY, 0, _trajectory_ok),
    "trajectory-seed": Field("trajectory", "Seed", TRAJECTORY, 2, _trajectory_ok),
    "vary-strength": Field("vary", "Strength", VARY, 1, _vary_ok),
    "vary-num": Field("vary", "Number of variations", VARY, 2, _vary_ok),
    "vary-steps": Field("vary", "Steps", VARY, 3, _vary_ok),
    "vary-seed": Field("vary", "Seed", VARY, 5, _vary_ok),
    "interpolate-points": Field("interpolate", "Number of points", INTERPOLATE, 2, _interpolate_ok),
    "trajectory_step-step": Field("trajectory_step", "Step", (1,), 0, _never),   # in a session with a 2-step run
}

LONG_TEXT = ("The quick brown fox jumps over the lazy dog.\n" * 2_300)[:100_000]
# name -> (value, transport, expected): transport "client" (gradio_client), "raw" (value is a JSON literal
# posted through the REST API); expected "ok", "refuse" or "either" (a well-formed success or a refusal).
TEXT_CASES = {
    "empty": ("", "client", "refuse"),
    "whitespace": (" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u00a0\u2003\u2028\u3000 ", "client", "refuse"),
    "100k-chars": (LONG_TEXT, "client", "ok"),
    "emoji": ("A family 👨‍👩‍👧‍👦 under a rainbow flag 🏳️‍🌈 waved flags 🇯🇵🇫🇷🇺🇦 👍🏽😀", "client", "ok"),
    "rtl-arabic": ("ذهب الولد الصغير إلى الحديقة ليلعب بالكرة.", "client", "ok"),
    "rtl-hebrew": ("הילד הקטן הלך לפארק לשחק בכדור.", "client", "ok"),
    "zero-width-only": ("\u200b\u200c\u200d\u2060\ufeff", "client", "either"),
    "zero-width-in-words": ("The li\u200bttle d\u200dog r\u200can to\u2060 the park\ufeff.", "client", "ok"),
    "control-only": ("".join(map(chr, range(0x20))) + "\x7f", "client", "either"),
    "control-in-words": ("The\x00 little\x07 dog\x1b[31m ran\x7f home.\x08", "client", "ok"),
    "lone-surrogate": ('"\\ud800"', "raw", "ok"),
    "surrogates-in-words": ('"The dog \\udfff ran \\ud800 home"', "raw", "ok"),
}
NUMBER_CASES = {
    "nan": ("NaN", "raw"), "inf": ("Infinity", "raw"), "-inf": ("-Infinity", "raw"),
    "negative": (-1, "client"), "zero": (0, "client"), "huge-int": (10**30, "client"), "1e308": (1e308, "client"),
    "fractional": (0.5, "client"), "string": ("3", "client"), "null": (None, "client"), "bool": (True, "client"),
}
ACCEPTED_NUMBERS = {("generate-seed", "zero"), ("trajectory-seed", "zero"), ("vary-seed", "zero"),
                    ("vary-strength", "fractional")}
# Exactly these inputs are already in test_app_api.BAD_INPUTS: not repeated here.
IN_TEST_APP_API = {"interpolate-text_a-empty", "latent_map-your_texts-empty", "generate-steps-nan",
                   "vary-strength-nan", "generate-samples-negative"}


@dataclass(frozen=True)
class Case:
    id: str
    field: Field
    value: object
    transport: str
    expected: str
    check_value: object = None            # what the success check compares against (the decoded text)


def _battery() -> list[Case]:
    def texts(fields):
        return [Case(f"{fname}-{cname}", field, value, transport, expected,
                     json.loads(value) if transport == "raw" else value)
                for fname, field in fields for cname, (value, transport, expected) in TEXT_CASES.items()]

    numbers = [Case(f"{fname}-{cname}", field, value, transport,
                    "ok" if (fname, cname) in ACCEPTED_NUMBERS else "refuse", value)
               for fname, field in NUMBER_FIELDS.items() for cname, (value, transport) in NUMBER_CASES.items()]
    fields = list(TEXT_FIELDS.items())
    cases = texts(fields[:-1]) + numbers + texts(fields[-1:])
    return [case for case in cases if case.id not in IN_TEST_APP_API]


BATTERY = _battery()


@pytest.fixture(scope="module")
def baseline(live_app) -> list[list]:
    """A normal /generate before the battery, to compare with the one after it."""
    c = new_client(live_app)
    try:
        return rows_of(c.predict(2, 5, "ddim", 1, api_name="/generate")[0])
    finally:
        release(c)


@pytest.fixture(scope="module")
def battery_client(live_app, baseline):
    c = new_client(live_app)
    yield c
    release(c)


@pytest.fixture(scope="module")
def scrub_client(live_app, baseline):
    """A session holding a finished 2-step trajectory, so /trajectory_step checks its step value."""
    c = new_client(live_app)
    assert c.predict(2, "ddim", 0, api_name="/trajectory")[3].startswith("step **2 / 2**")
    yield c
    release(c)


def send(app, client, case: Case) -> tuple[str, object]:
    """("complete", outputs) or ("error", message) for one case."""
    field = case.field
    if case.transport == "raw":
        data = list(field.template)
        data[field.index] = "__VALUE__"
        body = {"data": data}
        if field.endpoint == "trajectory_step":
            body["session_hash"] = client.session_hash
        return call_http(app, field.endpoint, json.dumps(body).replace('"__VALUE__"', case.value))
    args = list(field.template)
    args[field.index] = case.value
    try:
        return "complete", list(client.predict(*args, api_name="/" + field.endpoint))
    except AppError as err:
        return "error", str(err)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in BATTERY])
def test_battery(live_app, battery_client, scrub_client, case):
    client = scrub_client if case.field.endpoint == "trajectory_step" else battery_client
    start = live_app.log_size()
    kind, result = send(live_app, client, case)
    if kind == "error":
        assert case.expected in ("refuse", "either"), f"refused {case.id}: {result!r}"
        assert isinstance(result, str) and result.startswith(case.field.label + " "), result   # names the field
        assert GENERIC not in result and CRASH not in result and "Traceback" not in result, result
    else:
        assert case.expected in ("ok", "either"), f"accepted {case.id}: {result!r}"[:500]
        case.field.check(result, case.check_value)
    printed = live_app.log(since=start)
    assert "Traceback" not in printed and "unexpected failure" not in printed, printed[-3000:]


@pytest.mark.parametrize("field", [pytest.param(f, id=name) for name, f in TEXT_FIELDS.items()])
def test_battery_invalid_utf8_body_is_refused_before_the_app(live_app, baseline, field):
    """Invalid UTF-8 in the request body is not JSON (RFC 8259: JSON on the wire is UTF-8), so gradio
    refuses the request as a whole (400 "error parsing the body") before any handler runs: the field
    cannot be named there, but no event is created, nothing crashes and nothing is logged."""
    data = list(field.template)
    data[field.index] = "__VALUE__"
    invalid = b'"The dog \xff\xfe ran \xc3\x28 home \xed\xa0\x80"'    # stray bytes, a cut sequence, a CESU surrogate
    body = json.dumps({"data": data}).encode().replace(b'"__VALUE__"', invalid)
    start = live_app.log_size()
    with httpx.Client(trust_env=False, timeout=30) as http:
        posted = http.post(live_app.url + "gradio_api/call/" + field.endpoint, content=body,
                           headers={"content-type": "application/json"})
    assert posted.status_code == 400, (posted.status_code, posted.text)
    assert "error parsing the body" in posted.json()["detail"] and "event_id" not in posted.json(), posted.text
    assert "Traceback" not in live_app.log(since=start)


def test_battery_vary_with_a_subnormal_strength(live_app, battery_client):
    kind, result = send(live_app, battery_client, Case("vary-strength-1e-300", NUMBER_FIELDS["vary-strength"],
                                                       1e-300, "client", "either", 1e-300))
    if kind == "error":
        assert result.startswith("Strength "), result
    else:
        _vary_ok(result, 1e-300)


def test_after_the_battery_the_app_is_alive_and_answers(live_app, baseline):
    """Runs after the battery (file order): same process, same answer as before it, no Traceback ever."""
    assert live_app.process.poll() is None, "the app exited"
    c = new_client(live_app)
    try:
        table, info = c.predict(2, 5, "ddim", 1, api_name="/generate")
    finally:
        release(c)
    assert info.startswith("2 samples x 5 steps (DDIM, seed 1)"), info
    assert rows_of(table) == baseline
    log = live_app.log()
    assert "Traceback" not in log and "unexpected failure" not in log, log[-3000:]


# =========================================================================== 2. cancel (live)

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, timeout: float, window: float = 0.5, busy: float = 0.2) -> float:
    """Poll until the process used less than ``busy`` of one core over a ``window``; returns the
    seconds it took, or fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(window)   # the measuring window of a wait-for-condition loop
        if (cpu_seconds(pid) - before) / (time.monotonic() - t0) < busy:
            return time.monotonic() - start
    pytest.fail(f"the app kept computing for {timeout:.0f} s")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
def test_cancel_stops_a_long_trajectory_and_frees_the_server(live_app):
    steps, read = 500, 8
    client = new_client(live_app)
    try:
        wait_until_idle(live_app.process.pid, timeout=120)    # e.g. earlier tests' requests are over
        submitted = time.monotonic()
        job = client.submit(steps, "sde", 0, api_name="/trajectory")
        seen = 0
        for _ in job:
            seen += 1
            if seen == read:
                break
        per_step = (time.monotonic() - submitted) / seen      # includes queueing: errs on the long side
        remaining = (steps - seen) * per_step                 # what finishing the run would still take
        assert job.cancel()
        deadline = time.monotonic() + remaining / 2
        while not job.done():                                 # wait for the cancellation to land
            assert time.monotonic() < deadline, "the cancelled job did not end"
            time.sleep(0.05)
        asked = time.monotonic()
        table, info = client.predict(1, 2, "ddim", 0, api_name="/generate")
        answered = time.monotonic() - asked
        assert len(rows_of(table)) == 1 and info.startswith("1 sample x 2 steps"), info
        assert answered < remaining / 4, (f"/generate after the cancel took {answered:.2f} s; the rest of the "
                                          f"trajectory would take ~{remaining:.1f} s")
        streamed = len(job.outputs())
        assert read <= streamed < steps, streamed
        # the server stopped computing (not merely stopped sending), long before the run would have ended
        wait_until_idle(live_app.process.pid, timeout=remaining / 2)
        assert len(job.outputs()) == streamed
        # and the cancelled run was not stored as the session's finished trajectory
        with pytest.raises(AppError, match="Run a trajectory first"):
            client.predict(1, api_name="/trajectory_step")
    finally:
        release(client)
    assert live_app.process.poll() is None


# ======================================================================= 3. determinism

PIPELINE_SCRIPT = r"""
import json, sys, torch
from cosmos import CosmosPipeline
assert torch.get_num_threads() == 1, torch.get_num_threads()
pipe = CosmosPipeline.from_pretrained(sys.argv[1])
a, b = "The little dog ran to the park.", "The old man read a long letter."
runs = {
    "generate-sde": pipe.generate(3, steps=8, sampler="sde", seed=1234),
    "generate-sde-seed-1235": pipe.generate(3, steps=8, sampler="sde", seed=1235),
    "generate-ddim": pipe.generate(3, steps=8, sampler="ddim", seed=1234),
    "vary": pipe.vary(a, strength=0.6, num=3, steps=10, sampler="sde", seed=99),
    "interpolate-noise": pipe.interpolate(a, b, k=4, method="noise", steps=8),
}
torch.save({name: out.latents for name, out in runs.items()}, sys.argv[2])
print("RESULT " + json.dumps({name: out.texts for name, out in runs.items()}))
"""


@pytest.fixture(scope="module")
def two_more_apps():
    """Two more launches of ``app.py`` (different hash seeds), started without waiting: they boot while
    the pipeline subprocesses of the first determinism test run (which asks for them for that reason)."""
    apps = [LiveApp(env={"PYTHONHASHSEED": str(i)}) for i in (1, 2)]
    yield apps
    for app in apps:
        app.stop()


def test_pipeline_is_deterministic_across_processes(tmp_path, two_more_apps):
    """Two fresh interpreters (different hash seeds) give the same texts and bit-identical latents.

    They run side by side with one torch thread each (two 2-thread processes on 2 cores thrash: ~3x
    slower); the two apps of the next test use torch's default threads."""
    def launch(i: int) -> subprocess.Popen:
        env = {**os.environ, "PYTHONHASHSEED": str(i + 1), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        return subprocess.Popen([sys.executable, "-c", PIPELINE_SCRIPT, str(CHECKPOINT), str(tmp_path / f"{i}.pt")],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = [launch(0), launch(1)]                 # concurrently: half the wall time
    texts = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
        (line,) = [line for line in out.splitlines() if line.startswith("RESULT ")]
        texts.append(json.loads(line[len("RESULT "):]))
    first, second = texts
    assert first == second
    assert first["generate-sde"] != first["generate-sde-seed-1235"], "the seed changed nothing"
    assert all(len(t) == n for t, n in zip(first.values(), (3, 3, 3, 3, 4))), first
    latents = [torch.load(tmp_path / f"{i}.pt") for i in (0, 1)]
    for name in first:
        assert torch.equal(latents[0][name], latents[1][name]), name


def answers_of(app) -> dict[str, list]:
    """The same /generate and /vary requests, from a fresh session."""
    c = new_client(app)
    try:
        return {"generate-sde": rows_of(c.predict(3, 10, "sde", 42, api_name="/generate")[0]),
                "generate-ddim": rows_of(c.predict(3, 10, "ddim", 42, api_name="/generate")[0]),
                "vary-sde": rows_of(c.predict(TEXT_A, 0.6, 3, 10, "sde", 7, api_name="/vary")[0]),
                "vary-ddim": rows_of(c.predict(TEXT_B, 0.6, 2, 10, "ddim", 7, api_name="/vary")[0]),
                "generate-sde-seed-43": rows_of(c.predict(3, 10, "sde", 43, api_name="/generate")[0])}
    finally:
        release(c)


def test_app_is_deterministic_across_launches(two_more_apps):
    """Two separately launched apps (different hash seeds) answer /generate and /vary identically."""
    try:
        answers = []
        for app in two_more_apps:
            try:
                app.wait_ready()
            except AppStartError as err:
                pytest.fail(str(err), pytrace=False)
            answers.append(answers_of(app))
        first, second = answers
        assert first == second
        assert first["generate-sde"] != first["generate-sde-seed-43"], "the seed changed nothing"
        for app in two_more_apps:
            assert app.process.poll() is None and "Traceback" not in app.log(), app.log()[-3000:]
    finally:
        for app in two_more_apps:       # now, not at the end of the module: they would hold memory
            app.stop()


# ============================================== 4. properties of the handler layer (in-process)

PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u00a0\u1680\u2000\u2028\u2029\u3000"
TEXTS = st.one_of(
    st.text(),
    st.text(st.characters(exclude_categories=[])),                               # every category
    st.lists(st.one_of(st.text(max_size=5), st.characters(categories=["Cs"])), max_size=6).map("".join),
    st.text(st.sampled_from(WHITESPACE)),
    st.text(st.characters(exclude_categories=[]), min_size=1, max_size=30).map(lambda s: s * (100_000 // len(s))),
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.integers(min_value=-3, max_value=20),
    st.integers(min_value=10**18, max_value=10**300), st.integers(min_value=-10**300, max_value=-10**18),
    st.none(), st.booleans(), st.text(st.characters(exclude_categories=[]), max_size=50),
)


def blank(text: str) -> bool:
    return not text.encode("utf-8", "replace").decode("utf-8").strip()


def _finite(latents: torch.Tensor, count: int) -> None:
    assert latents.shape == (count, TINY_N, TINY_D) and bool(torch.isfinite(latents).all())


def check_interpolate(out, points: int) -> None:
    rows, figure, info, produced = out
    assert len(rows) == points and all(isinstance(r[1], str) and r[1] for r in rows), rows
    assert all(r[2] in ("● new", "same as above") for r in rows)
    assert isinstance(figure, go.Figure) and info.startswith(f"{points} points by ")
    assert isinstance(produced, Produced) and len(produced.texts) == points
    _finite(produced.latents, points)


def check_vary(out, num: int) -> None:
    rows, info, produced = out
    assert [r[0] for r in rows] == ["reconstruction (no noise)"] + [f"variation {i + 1}" for i in range(num)]
    assert all(isinstance(r[1], str) and r[1] for r in rows) and info.startswith(f"{num} variation(s)")
    _finite(produced.latents, num + 1)


def check_map(out, lines: int) -> None:
    figure, summary = out
    assert isinstance(figure, go.Figure)
    assert re.fullmatch(rf"\d+ reference points; placed: your texts \({lines}\)\.", summary), summary
    (mine,) = [t for t in figure.data if t.name == "your texts"]
    assert len(mine.x) == lines and all(math.isfinite(v) for v in list(mine.x) + list(mine.y))


def check_generate(out, num: int) -> None:
    rows, info, produced = out
    assert [r[0] for r in rows] == list(range(1, num + 1)) and all(isinstance(r[1], str) and r[1] for r in rows)
    assert info.startswith(f"{num} sample")
    _finite(produced.latents, num)


def check_trajectory(updates, steps: int) -> None:
    assert len(updates) == steps and all(len(u) == 5 for u in updates)
    run = updates[-1][4]
    assert isinstance(run, Trajectory) and run.steps == steps and run.final_latent is not None
    assert updates[-1][3].startswith(f"step **{steps} / {steps}**")


def check_step(out, step: int) -> None:
    highlighted, figure, caption = out
    assert highlighted and isinstance(figure, go.Figure) and caption.startswith(f"step **{step} / ")


def expect(run: Callable[[], object], ok: bool, field: str, check: Callable[[object], None]) -> None:
    """``run()`` returns a well-formed result when ``ok``, else raises a gr.Error naming ``field``; never
    any other exception, never the crash message of ``user_facing``."""
    try:
        result = run()
    except gr.Error as err:
        assert not ok, f"refused a valid value: {err.message}"
        assert err.message.startswith(field + " "), err.message
        assert CRASH not in err.message, err.message
        return
    assert ok, f"accepted an invalid value: {str(result)[:300]}"
    check(result)


@pytest.fixture(scope="module")
def pg(tiny_playground):
    """The tiny playground under small limits (a valid 500-step request is slow even on the tiny model;
    the rules are the same whatever the limits)."""
    return dataclasses.replace(tiny_playground, limits=Limits(max_samples=4, max_steps=12, max_points=6))


TEXT_HANDLERS = {
    "interpolate-text_a": ("Text A", lambda pg, t: interpolate_tab.interpolate(pg, t, TEXT_B, 3, "lerp"),
                           lambda out, t: check_interpolate(out, 3)),
    "interpolate-text_b": ("Text B", lambda pg, t: interpolate_tab.interpolate(pg, TEXT_A, t, 2, "slerp"),
                           lambda out, t: check_interpolate(out, 2)),
    "vary-text": ("Text", lambda pg, t: vary_tab.vary(pg, t, 0.5, 1, 2, "ddim", 0),
                  lambda out, t: check_vary(out, 1)),
}


@pytest.mark.filterwarnings("ignore::UserWarning")          # the "text was cut" toasts, outside gradio
@pytest.mark.parametrize("name", list(TEXT_HANDLERS))
@PROPERTY
@given(text=TEXTS)
def test_any_text_gives_a_result_or_a_refusal_naming_the_field(pg, name, text):
    field, run, check = TEXT_HANDLERS[name]
    expect(lambda: run(pg, text), not blank(text), field, lambda out: check(out, text))


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(PROPERTY, max_examples=10)                        # each draw places points with UMAP (~0.3 s)
@given(text=TEXTS)
def test_any_text_on_the_latent_map_gives_its_lines_or_a_refusal(pg, text):
    expect(lambda: latent_map_tab.draw_map(pg, text, ["your texts"], None, None, None, None), not blank(text),
           "Your texts", lambda out: check_map(out, len(map_lines(text))))


def whole(value, low: int, high: int) -> bool:
    """The documented rule for integer fields: a number (not a bool), finite, integral, in range."""
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and value == int(value) and low <= value <= high)


def vanishing_strength(pg, strength: float) -> bool:
    """A strength so small that the start time t_end + strength (1 - t_end) rounds to t_end."""
    t_end = pg.pipe.sampling.t_end
    return t_end + float(strength) * (1.0 - t_end) <= t_end


def fraction(value) -> bool:
    """The strength rule: a finite number in [vary_tab.MIN_STRENGTH, 1]."""
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and vary_tab.MIN_STRENGTH <= value <= 1)


TINY_RUN_STEPS = 3


@pytest.fixture(scope="module")
def tiny_run(pg) -> Trajectory:
    return list(trajectory_tab.run_trajectory(pg, TINY_RUN_STEPS, "ddim", 0))[-1][4]


# name -> (field label, validity(pg, value), call(pg, run, value), check(out, value)); the other fields are
# small and valid; the valid ranges are the documented ones under the playground's limits
NUMBER_HANDLERS = {
    "generate-num": ("Number of samples", lambda pg, v: whole(v, 1, pg.limits.max_samples),
                     lambda pg, run, v: generate_tab.generate(pg, v, 2, "ddim", 0),
                     lambda out, v: check_generate(out, int(v))),
    "generate-steps": ("Steps", lambda pg, v: whole(v, 1, pg.limits.max_steps),
                       lambda pg, run, v: generate_tab.generate(pg, 1, v, "sde", 0),
                       lambda out, v: check_generate(out, 1)),
    "generate-seed": ("Seed", lambda pg, v: whole(v, 0, MAX_SEED),
                      lambda pg, run, v: generate_tab.generate(pg, 1, 2, "sde", v),
                      lambda out, v: check_generate(out, 1)),
    "trajectory-steps": ("Steps", lambda pg, v: whole(v, 1, pg.limits.max_steps),
                         lambda pg, run, v: list(trajectory_tab.run_trajectory(pg, v, "ddim", 0)),
                         lambda out, v: check_trajectory(out, int(v))),
    "trajectory-seed": ("Seed", lambda pg, v: whole(v, 0, MAX_SEED),
                        lambda pg, run, v: list(trajectory_tab.run_trajectory(pg, 2, "sde", v)),
                        lambda out, v: check_trajectory(out, 2)),
    "trajectory_step-step": ("Step", lambda pg, v: whole(v, 1, TINY_RUN_STEPS),
                             lambda pg, run, v: trajectory_tab.show_step(run, v),
                             lambda out, v: check_step(out, int(v))),
    "interpolate-points": ("Number of points", lambda pg, v: whole(v, 2, pg.limits.max_points),
                           lambda pg, run, v: interpolate_tab.interpolate(pg, TEXT_A, TEXT_B, v, "slerp"),
                           lambda out, v: check_interpolate(out, int(v))),
    "vary-strength": ("Strength", lambda pg, v: fraction(v),
                      lambda pg, run, v: vary_tab.vary(pg, TEXT_A, v, 1, 4, "sde", 0),
                      lambda out, v: check_vary(out, 1)),
    "vary-num": ("Number of variations", lambda pg, v: whole(v, 1, pg.limits.max_samples),
                 lambda pg, run, v: vary_tab.vary(pg, TEXT_A, 0.5, v, 2, "ddim", 0),
                 lambda out, v: check_vary(out, int(v))),
    "vary-steps": ("Steps", lambda pg, v: whole(v, 1, pg.limits.max_steps),
                   lambda pg, run, v: vary_tab.vary(pg, TEXT_A, 0.5, 1, v, "ddim", 0),
                   lambda out, v: check_vary(out, 1)),
    "vary-seed": ("Seed", lambda pg, v: whole(v, 0, MAX_SEED),
                  lambda pg, run, v: vary_tab.vary(pg, TEXT_A, 0.5, 1, 2, "sde", v),
                  lambda out, v: check_vary(out, 1)),
}


@pytest.mark.parametrize("name", list(NUMBER_HANDLERS))
@PROPERTY
@given(value=NUMBERS)
def test_any_value_in_a_numeric_field_gives_a_result_or_a_refusal_naming_it(pg, tiny_run, name, value):
    field, valid, run, check = NUMBER_HANDLERS[name]
    expect(lambda: run(pg, tiny_run, value), valid(pg, value), field, lambda out: check(out, value))


@pytest.mark.parametrize("name", ["generate-seed", "vary-strength", "trajectory_step-step"])
def test_refusing_an_integer_of_more_than_4300_digits_names_the_field(pg, tiny_run, name):
    field, _valid, run, _check = NUMBER_HANDLERS[name]
    with pytest.raises(gr.Error) as caught:
        run(pg, tiny_run, 10**5000)
    assert caught.value.message.startswith(field + " "), caught.value.message


@pytest.mark.parametrize("strength", [1e-300, 5e-324, 3e-18])
def test_vary_with_a_tiny_strength_runs_or_names_the_field(pg, strength):
    assert vanishing_strength(pg, strength)       # small enough to add no noise at all: must be refused by name
    try:
        out = vary_tab.vary(pg, TEXT_A, strength, 1, 2, "ddim", 0)
    except gr.Error as err:
        assert err.message.startswith("Strength "), err.message
    else:
        check_vary(out, 1)
