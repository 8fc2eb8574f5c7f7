"""The live playground through its public API: ``python app.py`` runs as a subprocess on a loopback
port (``live_app``), and ``gradio_client`` calls every endpoint the way an API user would.

A ``Client`` is one gradio session, so session state (the trajectory the step slider scrubs, the
results the latent map overlays) carries between calls on the same client; every test gets a fresh
one (the bad inputs share one that never runs a trajectory). The API bypasses the UI's slider
limits, so bad values are sent too (NaN through the raw REST API, since gradio_client cannot encode
it): each must be refused with a message that names the field, without a Traceback in the server
log, and the app must go on serving. Texts are never checked for quality (the embedded checkpoint
is weak: repeated words), only for shape, determinism and consistency between endpoints.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from app.context import DEFAULT_CHECKPOINT
from cosmos.projection import LatentMap
from live_app import AppStartError, module_fixture, running_app

live_app = module_fixture()

ENDPOINTS = {"/random_seed", "/generate", "/trajectory", "/trajectory_step", "/interpolate", "/latent_map", "/vary",
             "/infill"}   # /infill: chunk-local checkpoints only (the embedded default is one)
SIGNATURES = {   # endpoint -> its parameters, in order; the trailing prompt and guidance_scale (issue 7) have defaults
    "/generate": ["num", "steps", "sampler", "seed", "prompt", "guidance_scale"],
    "/trajectory": ["steps", "sampler", "seed", "prompt", "guidance_scale"],
    "/infill": ["text", "keep", "num", "steps", "sampler", "seed", "prompt", "guidance_scale"],
}
DEFAULT_GUIDANCE = 1.0          # the embedded checkpoint stores none: SamplingConfig's default
PROMPT = "Once upon a time, a little cat found a red ball."
UNCONDITIONAL = ("Prompt must be empty here. This checkpoint is unconditional. Prompts need a conditional checkpoint: "
                 "the embedded story-continuation one, `python app.py --checkpoint assets/cosmos-story-cpu`, or your "
                 "own trained with the `story-cpu` preset (see README).")
MAX_SEED = 2**32 - 1
TEXT_A = "The little dog ran to the park to play with a red ball."
TEXT_B = "The old man sat by the window and read a long letter."
OVERLAYS = ["your texts", "generated samples", "interpolation path", "denoising trajectory", "variations"]


def new_client(app) -> Client:
    return Client(app.url, verbose=False, analytics_enabled=False, download_files=False)


def release(c: Client) -> None:
    """Close a client without waiting: ``close()`` joins its heartbeat thread for a full second."""
    threading.Thread(target=c.close, daemon=True).start()


@pytest.fixture
def client(live_app) -> Client:
    """A fresh gradio session against the live app."""
    c = new_client(live_app)
    yield c
    release(c)


@pytest.fixture(scope="module")
def refusing_client(live_app) -> Client:
    """One session for the bad inputs (they leave no state); it never runs a trajectory."""
    c = new_client(live_app)
    yield c
    release(c)


# ---------------------------------------------------------------------------------------- helpers

def rows_of(table: dict) -> list[list]:
    assert isinstance(table, dict) and "data" in table, table
    return table["data"]


def figure_of(plot: dict) -> dict:
    """The plotly figure JSON inside a gr.Plot output."""
    assert isinstance(plot, dict) and plot.get("type") == "plotly", plot
    return json.loads(plot["plot"])


def values(array) -> list:
    """A plotly data array, plain or typed (``{"dtype": "f8", "bdata": base64}``)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
    return list(array)


def traces(plot: dict) -> dict[str, dict]:
    return {trace.get("name"): trace for trace in figure_of(plot)["data"]}


def tokens_of(highlighted: list[dict]) -> list[str]:
    assert isinstance(highlighted, list) and highlighted, highlighted
    return [piece["token"] for piece in highlighted]


def call_http(app, api_name: str, body: str, timeout: float = 60) -> tuple[str, object]:
    """One call through gradio's REST API with a raw JSON body (``NaN`` can be sent this way; the
    client refuses to encode it). Returns ("complete", data) or ("error", message)."""
    url = app.url + "gradio_api/call/" + api_name
    with httpx.Client(trust_env=False, timeout=timeout) as http:
        posted = http.post(url, content=body, headers={"content-type": "application/json"})
        assert posted.status_code == 200, posted.text
        stream = http.get(f"{url}/{posted.json()['event_id']}").text
    events = re.findall(r"^event: (\w+)\ndata: (.*)$", stream, flags=re.M)
    final = [(kind, data) for kind, data in events if kind in ("complete", "error")]
    assert final, stream
    kind, data = final[-1]
    payload = json.loads(data)
    return kind, (payload.get("error") if kind == "error" and isinstance(payload, dict) else payload)


# ------------------------------------------------------------------------------------ the surface

def test_a_broken_checkpoint_stops_the_app_with_a_clear_message():
    """app.py exits (code 2) with a one-line reason; the live_app helper reports it, not a timeout."""
    with pytest.raises(AppStartError) as caught:
        with running_app(["--checkpoint", "/nonexistent/cosmos-checkpoint"], timeout=60):
            pass
    message = str(caught.value)
    assert "exited with code 2" in message, message
    assert "error: cannot load checkpoint '/nonexistent/cosmos-checkpoint'" in message, message
    assert "Traceback" not in message, message


def test_public_endpoints_are_exactly_the_documented_ones(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == ENDPOINTS
    assert not api["unnamed_endpoints"], f"unexpected unnamed endpoints: {list(api['unnamed_endpoints'])}"


def test_generate_and_trajectory_take_prompt_and_guidance_last_with_defaults(client):
    """Callers that send only the old arguments still work: gradio_client fills in the defaults."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for endpoint, names in SIGNATURES.items():
        params = api[endpoint]["parameters"]
        assert [p["parameter_name"] for p in params] == names, params
        assert [p["label"] for p in params[-2:]] == ["Prompt (optional)", "Guidance scale"]
        assert [(p["parameter_has_default"], p["parameter_default"]) for p in params[-2:]] == \
            [(True, ""), (True, DEFAULT_GUIDANCE)]


def test_random_seed_is_a_valid_seed(client):
    seeds = [client.predict(api_name="/random_seed") for _ in range(3)]
    assert all(isinstance(s, int) and 0 <= s <= MAX_SEED for s in seeds), seeds
    assert len(set(seeds)) > 1, f"three 'random' seeds were all {seeds[0]}"


# --------------------------------------------------------------------------------------- generate

def test_generate_returns_the_requested_rows_and_a_timing_line(client):
    table, info = client.predict(3, 10, "sde", 7, api_name="/generate")
    assert table["headers"] == ["sample", "text"]
    rows = rows_of(table)
    assert [row[0] for row in rows] == [1, 2, 3]
    assert all(isinstance(row[1], str) and row[1].strip() for row in rows), rows
    assert re.fullmatch(r"3 samples x 10 steps \(SDE, seed 7\) in \*\*\d+\.\d\d s\*\* \(\d+\.\d{3} s per sample\)\.",
                        info), info


@pytest.mark.parametrize("sampler", ["sde", "ddim"])
def test_generate_same_seed_gives_the_same_rows(client, sampler):
    first = rows_of(client.predict(2, 10, sampler, 11, api_name="/generate")[0])
    again = rows_of(client.predict(2, 10, sampler, 11, api_name="/generate")[0])
    other = rows_of(client.predict(2, 10, sampler, 12, api_name="/generate")[0])
    assert first == again
    assert first != other, "seeds 11 and 12 gave the same samples"


def test_an_empty_prompt_is_the_old_call(client):
    """Old four-value calls, an explicit empty (or blank) prompt with any valid guidance, and keyword
    arguments all give the same unconditional samples."""
    old = rows_of(client.predict(2, 10, "ddim", 4, api_name="/generate")[0])
    assert rows_of(client.predict(2, 10, "ddim", 4, "", DEFAULT_GUIDANCE, api_name="/generate")[0]) == old
    assert rows_of(client.predict(2, 10, "ddim", 4, " \n ", 3.5, api_name="/generate")[0]) == old
    assert rows_of(client.predict(num=2, steps=10, sampler="ddim", seed=4, prompt="", api_name="/generate")[0]) == old


@pytest.mark.parametrize("endpoint, args", [("/generate", (2, 10, "sde", 0)), ("/trajectory", (10, "sde", 0))])
def test_a_prompt_to_the_unconditional_checkpoint_says_how_to_get_a_conditional_one(client, endpoint, args):
    with pytest.raises(AppError) as caught:
        client.predict(*args, PROMPT, DEFAULT_GUIDANCE, api_name=endpoint)
    assert str(caught.value) == UNCONDITIONAL, str(caught.value)
    with pytest.raises(AppError, match="^Prompt must be empty here"):
        client.predict(*args, prompt=PROMPT, api_name=endpoint)          # keyword, default guidance


# ------------------------------------------------------------------------------------- trajectory

STEPS = 12


def _stream_trajectory(client, steps=STEPS, sampler="sde", seed=3) -> list[tuple]:
    job = client.submit(steps, sampler, seed, api_name="/trajectory")
    outputs = list(job)                       # every streamed output, in order, as it arrives
    assert job.status().success, job.status()
    return outputs


def test_trajectory_streams_one_output_per_step(client):
    outputs = _stream_trajectory(client)
    assert len(outputs) == STEPS
    for i, (highlighted, _figure, slider, caption) in enumerate(outputs, start=1):
        assert caption.startswith(f"step **{i} / {STEPS}** · σ(t) = "), caption
        assert tokens_of(highlighted)
        if i < STEPS:
            assert slider.get("visible") is False, slider          # the step slider appears at the end
    highlighted, figure, slider, caption = outputs[-1]
    final_text = caption.split("<br>final sample: ", 1)[1]
    assert final_text.strip(), caption
    assert slider["visible"] is True and (slider["minimum"], slider["maximum"], slider["value"]) == (1, STEPS, STEPS)
    charts = traces(figure)
    assert set(charts) == {"distance", "changed", "σ(t)", "chunks"}, set(charts)   # chunks: the chunk-local heat strip
    assert "· chunks changed: " in caption
    assert len(values(charts["distance"]["y"])) == STEPS
    assert values(charts["distance"]["y"])[-1] < values(charts["distance"]["y"])[0]  # x0 estimates close in


def test_trajectory_step_scrubs_the_session_run_without_recomputing(client):
    outputs = _stream_trajectory(client)
    for step in (1, 5, STEPS):
        highlighted, figure, caption = client.predict(step, api_name="/trajectory_step")
        assert caption.startswith(f"step **{step} / {STEPS}** · σ(t) = "), caption
        assert highlighted == outputs[step - 1][0], f"step {step} differs from what was streamed"
        assert caption == outputs[step - 1][3].split("<br>")[0]
        marker = figure_of(figure)["layout"]["shapes"][0]    # the dotted line marks that step's bar
        assert marker["x0"] == values(traces(figure)["changed"]["x"])[step - 1]


def test_trajectory_chart_counts_steps_like_the_caption(client):
    _stream_trajectory(client)
    _highlighted, figure, caption = client.predict(5, api_name="/trajectory_step")
    assert caption.startswith(f"step **5 / {STEPS}**")
    assert figure_of(figure)["layout"]["shapes"][0]["x0"] == 5
    assert values(traces(figure)["changed"]["x"]) == list(range(1, STEPS + 1))


def test_trajectory_step_before_any_trajectory_is_a_clear_error(client):
    with pytest.raises(AppError, match="Run a trajectory first"):
        client.predict(1, api_name="/trajectory_step")


def test_trajectory_sessions_are_separate(live_app, client):
    _stream_trajectory(client)
    other = new_client(live_app)
    try:
        with pytest.raises(AppError, match="Run a trajectory first"):
            other.predict(1, api_name="/trajectory_step")
    finally:
        release(other)


def test_trajectory_with_a_single_step(client):
    highlighted, _figure, _slider, caption = client.predict(1, "ddim", 0, api_name="/trajectory")
    assert caption.startswith("step **1 / 1**"), caption
    assert tokens_of(highlighted)


# ------------------------------------------------------------------------------------ interpolate

@pytest.mark.parametrize("method", ["lerp", "slerp", "noise"])
def test_interpolate(client, method):
    points = 5
    table, plot, info = client.predict(TEXT_A, TEXT_B, points, method, api_name="/interpolate")
    rows = rows_of(table)
    assert table["headers"] == ["position", "decoded text", "distinct?"]
    assert [row[0] for row in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(isinstance(row[1], str) and row[1] for row in rows), rows
    marks = [row[2] for row in rows]
    assert marks[0] == "● new" and set(marks) <= {"● new", "same as above"}, marks
    for prev, row in zip(rows, rows[1:]):
        assert (row[2] == "● new") == (row[1] != prev[1]), (prev, row)
    distinct = marks.count("● new")
    assert re.match(rf"{points} points by {method} in \d+\.\d\d s: \*\*{distinct} distinct texts\*\* along the path\.",
                    info), info
    charts = traces(plot)
    assert set(charts) == {"distance to text A", "distance to text B"}
    to_a, to_b = values(charts["distance to text A"]["y"]), values(charts["distance to text B"]["y"])
    assert values(charts["distance to text A"]["x"]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(to_a) == len(to_b) == points and all(math.isfinite(v) and v >= 0 for v in to_a + to_b)
    if method in ("lerp", "slerp"):                   # the path starts at A's latent and ends at B's
        assert to_a[0] == pytest.approx(0, abs=1e-6) and to_b[-1] == pytest.approx(0, abs=1e-6)
        assert to_a[-1] == pytest.approx(1, abs=1e-4) and to_b[0] == pytest.approx(1, abs=1e-4)
    if method == "lerp":                              # a straight line: distance to A grows linearly
        assert to_a == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0], abs=1e-4)


def test_interpolate_summary_claim_about_the_end_rows_holds_for_noise(client):
    lerp_rows = rows_of(client.predict(TEXT_A, TEXT_B, 3, "lerp", api_name="/interpolate")[0])
    table, _plot, info = client.predict(TEXT_A, TEXT_B, 3, "noise", api_name="/interpolate")
    rows = rows_of(table)
    if "reconstructs" in info:              # the claim is made: the end rows must be the reconstructions
        assert (rows[0][1], rows[-1][1]) == (lerp_rows[0][1], lerp_rows[-1][1])


# ------------------------------------------------------------------------------------------- vary

def test_vary_returns_the_reconstruction_and_the_variations(client):
    table, info = client.predict(TEXT_A, 0.5, 3, 20, "ddim", 1, api_name="/vary")
    rows = rows_of(table)
    assert [row[0] for row in rows] == ["reconstruction (no noise)", "variation 1", "variation 2", "variation 3"]
    assert all(isinstance(row[1], str) and row[1] for row in rows), rows
    assert re.match(r"3 variation\(s\): noised to strength 0\.5, then 10 DDIM steps \(seed 1\) in \*\*\d+\.\d\d s\*\*",
                    info), info
    assert rows == rows_of(client.predict(TEXT_A, 0.5, 3, 20, "ddim", 1, api_name="/vary")[0])   # seeded
    # the reconstruction is decode(encode(text)), as is the first point of a lerp path from the same text
    path = rows_of(client.predict(TEXT_A, TEXT_B, 2, "lerp", api_name="/interpolate")[0])
    assert rows[0][1] == path[0][1]


# ----------------------------------------------------------------------------------------- infill

STORY = ("Once upon a time, there was a little girl named Lily. She loved to play with her red ball in the park. "
         "One day, the ball rolled away.")
KEPT_PREFIX = "Once upon a time, there was a little girl named Lily. She loved to play with her red ball in the"
INFILL_STEPS = 8


def _stream_infill(client, keep=(0, 1, 2), num=2, seed=0) -> list[tuple]:
    job = client.submit(STORY, list(keep), num, INFILL_STEPS, "sde", seed, api_name="/infill")
    outputs = list(job)
    assert job.status().success, job.status()
    return outputs


def test_infill_streams_every_step_and_keeps_the_chunks_verbatim(client):
    """Chunks 0-2 of the story (the "continue" preset: its first half) are kept; 3-7 rewritten."""
    outputs = _stream_infill(client)
    assert len(outputs) == INFILL_STEPS
    for i, (highlighted, caption, _table) in enumerate(outputs, start=1):
        assert caption.startswith(f"step **{i} / {INFILL_STEPS}** · σ(t) = ") or i == INFILL_STEPS, caption
        classes = {piece["class_or_confidence"] for piece in highlighted}
        assert classes <= {"kept", "rewritten", None} and "kept" in classes, classes
        tokens = tokens_of(highlighted)
        assert tokens.count("\n") == 2 and tokens[0] == "variant 1: ", tokens[:3]
    highlighted, info, table = outputs[-1]
    assert re.match(r"2 variants x 8 steps \(SDE, seed 0\) in \*\*\d+\.\d\d s\*\*: kept chunk\(s\) 0, 1, 2 "
                    r"\(the text's own tokens\), rewrote 3, 4, 5, 6, 7\.$", info), info
    assert table["headers"] == ["variant", "text"]
    rows = rows_of(table)
    assert [row[0] for row in rows] == ["variant 1", "variant 2"]
    assert all(row[1].startswith(KEPT_PREFIX) and len(row[1]) > len(KEPT_PREFIX) for row in rows), rows
    kept = "".join(p["token"] for p in highlighted if p["class_or_confidence"] == "kept")
    assert kept.replace(" ,", ",").replace(" .", ".").startswith(KEPT_PREFIX), kept


def test_infill_same_seed_gives_the_same_variants_and_the_map_draws_them(client):
    first = rows_of(_stream_infill(client, seed=4)[-1][2])
    assert rows_of(_stream_infill(client, seed=4)[-1][2]) == first
    assert rows_of(_stream_infill(client, seed=5)[-1][2]) != first
    plot, info = client.predict("a cat", ["infill variants"], api_name="/latent_map")   # the session's last run
    assert "placed: infill variants (3)" in info, info                 # the text and its two variants
    assert len(values(traces(plot)["infill variants"]["x"])) == 3


def test_infill_keep_takes_indices_as_numbers_or_digit_strings(client):
    numbers = rows_of(client.predict(STORY, [0, 1, 2], 1, 4, "ddim", 0, api_name="/infill")[2])
    strings = rows_of(client.predict(STORY, ["2", "0", "1"], 1, 4, "ddim", 0, api_name="/infill")[2])
    assert numbers == strings


# ------------------------------------------------------------------------------------- latent map

MY_TEXTS = ["Once upon a time there was a little cat", "The economy grew strongly this year"]


def test_latent_map_overlays_your_texts_and_generated_samples(client):
    client.predict(3, 10, "sde", 5, api_name="/generate")              # same session: the map can use it
    plot, info = client.predict("\n".join(MY_TEXTS) + "\n\n", ["your texts", "generated samples"],
                                api_name="/latent_map")
    assert re.fullmatch(r"\d+ reference points; placed: your texts \(2\), generated samples \(3\)\.", info), info
    charts = traces(plot)
    mine, generated = charts["your texts"], charts["generated samples"]
    assert len(values(mine["x"])) == len(values(mine["y"])) == 2
    assert len(values(generated["x"])) == 3
    assert [h.replace("<br>", " ") for h in mine["hovertext"]] == MY_TEXTS
    reference = [t for name, t in charts.items() if name not in OVERLAYS]
    assert reference and sum(len(values(t["x"])) for t in reference) == int(info.split()[0])
    xs = [x for t in charts.values() for x in values(t["x"])]
    assert all(math.isfinite(x) for x in xs)
    # the map shown is the stored one, on any machine (no refit moves it)
    stored = LatentMap.load(DEFAULT_CHECKPOINT).coords
    shown = np.array([(x, y) for t in reference for x, y in zip(values(t["x"]), values(t["y"]))])
    assert np.allclose(np.sort(shown, axis=0), np.sort(stored, axis=0), atol=1e-5)


def test_latent_map_overlays_every_tab_of_the_session(client):
    client.predict(2, 10, "ddim", 0, api_name="/generate")
    _stream_trajectory(client, steps=10)
    client.predict(TEXT_A, TEXT_B, 4, "lerp", api_name="/interpolate")
    client.predict(TEXT_A, 0.4, 2, 10, "sde", 0, api_name="/vary")
    plot, info = client.predict("a cat", OVERLAYS, api_name="/latent_map")
    assert "Not drawn" not in info, info
    charts = traces(plot)
    assert set(OVERLAYS) <= set(charts), set(charts)
    counts = {"your texts": 1, "generated samples": 2, "interpolation path": 4, "variations": 1 + 2}
    assert {name: len(values(charts[name]["x"])) for name in counts} == counts
    hover = charts["denoising trajectory"]["hovertext"]
    assert hover[0].startswith("step 1: ") and hover[-1].startswith("final sample: "), hover


def test_latent_map_trajectory_overlay_covers_a_short_run(client):
    _stream_trajectory(client, steps=10)
    plot, _info = client.predict("a cat", ["denoising trajectory"], api_name="/latent_map")
    labels = [h.split(":")[0] for h in traces(plot)["denoising trajectory"]["hovertext"]]
    assert labels == [f"step {i}" for i in range(1, 11)] + ["final sample"]


def test_latent_map_says_which_tabs_to_run_first(client):
    plot, info = client.predict("a cat", ["generated samples", "variations"], api_name="/latent_map")
    assert "Not drawn: generated samples: run the Generate tab first; variations: run the Vary / edit tab first" \
        in info, info
    assert not set(traces(plot)) & set(OVERLAYS)


# -------------------------------------------------------------------------------------- bad input

@dataclass(frozen=True)
class Bad:
    id: str
    endpoint: str
    args: tuple = ()
    body: str | None = None              # sent as raw JSON through the REST API (for NaN) instead of the client
    field: str = ""                      # the message must name it


BAD_INPUTS = [
    Bad("empty-text-a", "/interpolate", ("", TEXT_B, 4, "lerp"), field="Text A"),
    Bad("blank-text-vary", "/vary", (" \n\t ", 0.5, 2, 10, "sde", 0), field="Text"),
    Bad("empty-your-texts", "/latent_map", ("", ["your texts"]), field="Your texts"),
    Bad("nan-steps", "generate", body='{"data": [2, NaN, "sde", 0, "", 1.0]}', field="Steps"),
    Bad("nan-guidance", "generate", body='{"data": [2, 10, "sde", 0, "", NaN]}', field="Guidance scale"),
    Bad("guidance-too-high", "/trajectory", (10, "sde", 0, "", 5.5), field="Guidance scale"),
    Bad("prompt-not-text", "/generate", (2, 10, "sde", 0, 42, 1.0), field="Prompt"),
    Bad("prompt-unconditional", "/generate", (2, 10, "sde", 0, PROMPT, 1.0), field="Prompt"),
    Bad("prompt-unconditional-trajectory", "/trajectory", (10, "sde", 0, "a dog", 1.0), field="Prompt"),
    Bad("nan-strength", "vary", body='{"data": ["a cat", NaN, 2, 10, "sde", 0]}', field="Strength"),
    Bad("fractional-samples", "/generate", (2.5, 10, "sde", 0), field="Number of samples"),
    Bad("too-much-work", "/generate", (16, 500, "sde", 0), field="steps"),
    Bad("negative-samples", "/generate", (-1, 10, "sde", 0), field="Number of samples"),
    Bad("huge-seed", "/generate", (2, 10, "sde", 2**40), field="Seed"),
    Bad("unknown-sampler", "/generate", (2, 10, "euler", 0), field="Sampler"),
    Bad("unknown-method", "/interpolate", (TEXT_A, TEXT_B, 4, "cubic"), field="Method"),
    Bad("strength-zero", "/vary", (TEXT_A, 0, 2, 10, "sde", 0), field="Strength"),
    Bad("text-for-steps", "/generate", (2, "ten", "sde", 0), field="Steps"),
    Bad("step-before-any-run", "/trajectory_step", (5,), field="Run a trajectory first"),
    Bad("infill-empty-text", "/infill", ("", [0], 2, 10, "sde", 0), field="Text"),
    Bad("infill-text-not-text", "/infill", (5, [0], 2, 10, "sde", 0), field="Text"),
    Bad("infill-keep-comma-string", "/infill", (TEXT_A, "0,1", 2, 10, "sde", 0), field="Keep"),
    Bad("infill-keep-empty-string", "/infill", (TEXT_A, "", 2, 10, "sde", 0), field="Keep"),
    Bad("infill-keep-out-of-range", "/infill", (TEXT_A, [8], 2, 10, "sde", 0), field="Keep"),
    Bad("infill-keep-negative", "/infill", (TEXT_A, [-1], 2, 10, "sde", 0), field="Keep"),
    Bad("infill-keep-word", "/infill", (TEXT_A, ["first"], 2, 10, "sde", 0), field="Keep"),
    Bad("infill-too-many-variants", "/infill", (TEXT_A, [0], 17, 10, "sde", 0), field="Number of variants"),
    Bad("nan-infill-steps", "infill", body='{"data": ["a cat", [0], 2, NaN, "sde", 0, "", 1.0]}', field="Steps"),
    Bad("infill-prompt-unconditional", "/infill", (TEXT_A, [0], 2, 10, "sde", 0, PROMPT, 1.0), field="Prompt"),
]


def refusal(app, client: Client, bad: Bad) -> str:
    """Send a bad input; return the error message (fails if it was accepted)."""
    if bad.body is not None:
        kind, result = call_http(app, bad.endpoint, bad.body)
        assert kind == "error", f"{bad.id} was accepted: {result!r}"
        assert isinstance(result, str), result
        return result
    with pytest.raises((AppError, ValueError)) as caught:
        result = client.predict(*bad.args, api_name=bad.endpoint)
        pytest.fail(f"{bad.id} was accepted: {result!r}")
    return str(caught.value)


def _params(marks_of):
    return [pytest.param(bad, id=bad.id, marks=marks_of(bad)) for bad in BAD_INPUTS]


@pytest.mark.parametrize("bad", _params(lambda bad: ()))
def test_bad_input_is_refused_without_a_traceback(live_app, refusing_client, bad):
    message = refusal(live_app, refusing_client, bad)
    assert message.strip()
    assert "Traceback" not in message and 'File "' not in message, message


@pytest.mark.parametrize("bad", _params(lambda bad: ()))
def test_bad_input_error_names_the_field(live_app, refusing_client, bad):
    message = refusal(live_app, refusing_client, bad)
    assert bad.field.lower() in message.lower(), message
    assert "upstream Gradio app has raised an exception" not in message, message


@pytest.mark.parametrize("bad", _params(lambda bad: ()))
def test_bad_input_leaves_no_traceback_in_the_server_log(live_app, refusing_client, bad):
    start = live_app.log_size()
    refusal(live_app, refusing_client, bad)                   # gradio prints (if at all) before it sends the error
    printed = live_app.log(since=start)
    assert "Traceback" not in printed, printed[-2000:]


def test_nan_cannot_even_leave_gradio_client(client):
    """What an API user of ``gradio_client`` sees for NaN: a local refusal, nothing reaches the app."""
    with pytest.raises(ValueError, match="JSON compliant"):
        client.predict(2, float("nan"), "sde", 0, api_name="/generate")


def test_app_still_serves_after_every_bad_input(live_app, refusing_client, client):
    start = live_app.log_size()
    for bad in BAD_INPUTS:
        refusal(live_app, refusing_client, bad)
    table, info = client.predict(2, 5, "ddim", 1, api_name="/generate")
    assert len(rows_of(table)) == 2 and info.startswith("2 samples x 5 steps"), info
    printed = live_app.log(since=start)
    assert "unexpected failure" not in printed, printed[-3000:]   # validation is not reported as a crash
    assert live_app.process.poll() is None
