"""Load test: N concurrent API clients on loopback, mixing every endpoint of the live playground.

    python -m bench.load                       # 10 and 50 clients, the embedded checkpoint
    python -m bench.load --clients 10 --requests 6 --duration 120

Each client is one ``gradio_client.Client`` (its own session) in its own thread. It sends up to
``--requests`` requests, cycling through the mix below from a different starting point, and stops
early when ``--duration`` seconds have passed, so a run is bounded in count and time. Every request
is timed from send to its last byte (a streamed trajectory: to its last update). A sampler thread
reads the server's resident memory (``/proc/<pid>/status``) every 0.2 s; ``VmHWM`` gives its peak.

Reports per client count: requests, errors (target 0), p50 / p95 / max latency overall and per
endpoint, throughput, and the server's peak memory. The app runs one model call at a time (the
queue holds the rest), so latency under load is mostly queueing: p95 grows with the number of
clients while throughput stays near what one CPU-bound worker can do. Writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.live_app import running_app

MIX = [  # (name, endpoint, args): small requests, as a playground visitor sends them
    ("generate", "/generate", (4, 20, "sde", 0)),
    ("trajectory", "/trajectory", (20, "ddim", 1)),
    ("interpolate", "/interpolate", ("The dog ran to the park.", "The old man read a letter.", 4, "slerp")),
    ("vary", "/vary", ("A little girl found a shiny stone.", 0.5, 2, 20, "sde", 2)),
    ("latent_map", "/latent_map", ("Call me Ishmael.\nThe cat sat on the mat.", ["your texts"])),
    ("trajectory_step", "/trajectory_step", (10,)),    # scrubs the session's last trajectory
]


@dataclass
class Result:
    endpoint: str
    seconds: float
    error: str | None


def _memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _client_loop(url: str, index: int, requests: int, deadline: float, results: list[Result],
                 lock: threading.Lock) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
    except Exception as err:  # counted: a client that cannot even connect is an error
        with lock:
            results.append(Result("connect", 0.0, f"{type(err).__name__}: {err}"))
        return
    ran_trajectory = False
    for k in range(requests):
        if time.monotonic() > deadline:
            return
        name, endpoint, args = MIX[(index + k) % len(MIX)]
        if name == "trajectory_step" and not ran_trajectory:
            name, endpoint, args = MIX[0]  # nothing to scrub in this session yet: generate instead
        ran_trajectory |= name == "trajectory"
        start, error = time.perf_counter(), None
        try:
            if name == "trajectory":
                updates = sum(1 for _ in client.submit(*args, api_name=endpoint))
                if updates != args[0]:
                    error = f"streamed {updates} updates for {args[0]} steps"
            else:
                client.predict(*args, api_name=endpoint)
        except Exception as err:
            error = f"{type(err).__name__}: {str(err)[:200]}"
        with lock:
            results.append(Result(name, time.perf_counter() - start, error))


def run_load(url: str, pid: int, clients: int, requests: int, duration: float) -> dict:
    results: list[Result] = []
    lock = threading.Lock()
    peak_sampled, stop = [0], threading.Event()

    def sample_memory() -> None:
        while not stop.is_set():
            peak_sampled[0] = max(peak_sampled[0], _memory_kb(pid, "VmRSS"))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    rss_before = _memory_kb(pid, "VmRSS")
    deadline = time.monotonic() + duration
    start = time.perf_counter()
    threads = [threading.Thread(target=_client_loop, args=(url, i, requests, deadline, results, lock))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 120)   # a request in flight at the deadline may finish
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()

    def summary(rs: list[Result]) -> dict:
        times = sorted(r.seconds for r in rs if r.error is None)
        pct = (lambda q: round(times[min(len(times) - 1, int(q * len(times)))], 2)) if times else (lambda q: None)
        return {"requests": len(rs), "errors": sum(r.error is not None for r in rs),
                "p50_s": round(statistics.median(times), 2) if times else None, "p95_s": pct(0.95),
                "max_s": round(times[-1], 2) if times else None}

    return {"clients": clients, "wall_s": round(wall, 1), **summary(results),
            "throughput_per_s": round(len(results) / wall, 2),
            "per_endpoint": {name: summary([r for r in results if r.endpoint == name])
                             for name in sorted({r.endpoint for r in results})},
            "error_samples": sorted({r.error for r in results if r.error})[:5],
            "server_rss_mb": {"before": round(rss_before / 1024), "peak_sampled": round(peak_sampled[0] / 1024),
                              "peak_vmhwm": round(_memory_kb(pid, "VmHWM") / 1024)},
            "threads_alive_after_join": sum(t.is_alive() for t in threads)}


def main(argv: list[str] | None = None) -> None:
    from cosmos.checkpoint import checkpoint_from_env

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--requests", type=int, default=6, help="requests per client (at most)")
    parser.add_argument("--duration", type=float, default=240.0, help="seconds after which clients stop sending")
    parser.add_argument("--out", default="bench/results/load.json")
    args = parser.parse_args(argv)
    checkpoint = checkpoint_from_env(args.checkpoint)
    runs = []
    with running_app(["--checkpoint", checkpoint]) as app:
        from gradio_client import Client

        Client(app.url, verbose=False).predict("warm up", ["your texts"], api_name="/latent_map")  # UMAP refit done
        for clients in args.clients:
            run = run_load(app.url, app.process.pid, clients, args.requests, args.duration)
            runs.append(run)
            print(f"{clients:3d} clients: {run['requests']} requests in {run['wall_s']} s "
                  f"({run['throughput_per_s']}/s), errors {run['errors']}, latency p50 {run['p50_s']} s "
                  f"p95 {run['p95_s']} s max {run['max_s']} s, server RSS peak {run['server_rss_mb']['peak_vmhwm']} MB")
            for name, s in run["per_endpoint"].items():
                print(f"      {name:<16} n={s['requests']:3d} err={s['errors']} p50 {s['p50_s']} s p95 {s['p95_s']} s")
            for sample in run["error_samples"]:
                print(f"      error: {sample}")
        alive = app.process.poll() is None
    result = {"checkpoint": checkpoint, "cores": os.cpu_count(), "requests_per_client": args.requests,
              "duration_cap_s": args.duration, "mix": [m[0] for m in MIX], "server_alive_at_end": alive,
              "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"server alive at the end: {alive}; wrote {args.out}")


if __name__ == "__main__":
    main()
