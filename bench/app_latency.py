"""The playground's speed as a user meets it: cold start, and requests through the live app's API.

    python -m bench.app_latency                     # the embedded default checkpoint
    python -m bench.app_latency --checkpoint DIR --repeats 7 --starts 5

Measures, on this machine, with ``python app.py`` as a subprocess on loopback (``bench.live_app``):

    cold start         process spawn -> the page answers (GET / = 200); median of ``--starts``
    first result       process spawn -> the first 4 x 50 /generate has returned (same starts)
    /generate 4x50     warm API latency (gradio_client), median of ``--repeats``
    /trajectory 50     a streamed 50-step trajectory, first request byte to last update
    baseline           the same work called on ``CosmosPipeline`` directly in this process

The ratio app / direct is the cost of the web layer (queue, JSON, session state) over the model.
Before the warm timings one /latent_map overlay waits for the app's background UMAP refit, so
it does not compete for the CPU. Run on an otherwise idle machine. Writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from bench.live_app import running_app

NUM, STEPS, SAMPLER = 4, 50, "sde"


def _median_ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 1)


def cold_starts(args: list[str], starts: int) -> tuple[list[float], list[float]]:
    from gradio_client import Client

    ready, first = [], []
    for _ in range(starts):
        spawned = time.perf_counter()
        with running_app(args) as app:
            ready.append(time.perf_counter() - spawned)
            Client(app.url, verbose=False).predict(NUM, STEPS, SAMPLER, 0, api_name="/generate")
            first.append(time.perf_counter() - spawned)
    return ready, first


def warm_requests(args: list[str], repeats: int) -> dict[str, list[float]]:
    from gradio_client import Client

    times: dict[str, list[float]] = {"generate": [], "trajectory": []}
    with running_app(args) as app:
        client = Client(app.url, verbose=False)
        client.predict("warm up the map", ["your texts"], api_name="/latent_map")  # waits for the UMAP refit
        client.predict(NUM, STEPS, SAMPLER, 0, api_name="/generate")               # warm-up
        for seed in range(repeats):
            start = time.perf_counter()
            client.predict(NUM, STEPS, SAMPLER, seed, api_name="/generate")
            times["generate"].append(time.perf_counter() - start)
            start = time.perf_counter()
            job = client.submit(STEPS, SAMPLER, seed, api_name="/trajectory")
            updates = sum(1 for _ in job)
            times["trajectory"].append(time.perf_counter() - start)
            assert updates == STEPS, f"/trajectory streamed {updates} updates for {STEPS} steps"
    return times


def direct_calls(checkpoint: str, repeats: int) -> dict[str, list[float]]:
    from cosmos import CosmosPipeline

    pipe = CosmosPipeline.from_pretrained(checkpoint)
    pipe.generate(NUM, steps=STEPS, sampler=SAMPLER, seed=0)                        # warm-up
    times: dict[str, list[float]] = {"generate": [], "trajectory": []}
    for seed in range(repeats):
        start = time.perf_counter()
        pipe.generate(NUM, steps=STEPS, sampler=SAMPLER, seed=seed)
        times["generate"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in pipe.trajectory(1, steps=STEPS, sampler=SAMPLER, seed=seed):
            pass
        times["trajectory"].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    from cosmos.checkpoint import checkpoint_from_env

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="folder or hub id (default: the embedded one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--out", default="bench/results/app.json")
    args = parser.parse_args(argv)
    checkpoint = checkpoint_from_env(args.checkpoint)
    app_args = ["--checkpoint", checkpoint]
    load_before = os.getloadavg()[0]
    ready, first = cold_starts(app_args, args.starts)
    app = warm_requests(app_args, args.repeats)
    direct = direct_calls(checkpoint, args.repeats)
    result = {
        "checkpoint": checkpoint, "work": f"{NUM} samples x {STEPS} steps ({SAMPLER})",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "cold_start_s": {"median": round(statistics.median(ready), 2), "runs": [round(v, 2) for v in ready]},
        "first_result_s": {"median": round(statistics.median(first), 2), "runs": [round(v, 2) for v in first]},
        "generate_ms": {"app": _median_ms(app["generate"]), "direct": _median_ms(direct["generate"])},
        "trajectory_ms": {"app": _median_ms(app["trajectory"]), "direct": _median_ms(direct["trajectory"])},
        "repeats": args.repeats, "starts": args.starts,
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
    print(f"{result['machine']}; checkpoint {checkpoint}")
    print(f"cold start (spawn -> page answers):      {result['cold_start_s']['median']:.2f} s "
          f"(runs {result['cold_start_s']['runs']})")
    print(f"first result (spawn -> 4x50 /generate):  {result['first_result_s']['median']:.2f} s")
    for name, label in (("generate", f"/generate {NUM}x{STEPS}"), ("trajectory", f"/trajectory {STEPS} steps")):
        ms = result[f"{name}_ms"]
        print(f"{label:<24} app {ms['app']:8.1f} ms   direct {ms['direct']:8.1f} ms   "
              f"app/direct {ms['app'] / ms['direct']:.2f}x   (median of {args.repeats})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
