#!/usr/bin/env python
"""Load on ``ssl-ws serve`` over loopback: N concurrent clients for T seconds, then stop.

Starts ``ssl-ws serve INDEX`` on a free loopback port, takes every query's answer once
unloaded, then runs ``--clients`` concurrent clients (one asyncio process, ``httpx``), each
sending its next request as soon as its previous answer arrived (a closed loop), for
``--seconds`` per kind of query:

* ``ids``: ``{"ids": [row], "k": 10}`` for rows drawn from the index;
* ``images``: ``{"images": [<PNG>], "k": 10}`` -- each image fitted on the fly with the store's
  recipe (the expensive kind), fewer clients (``--image-clients``).

It prints throughput, p50 / p90 / p99 latency and failures per kind, and checks that every loaded
answer equals the unloaded answer to the same request (images: the same neighbours; their
similarities to 1e-5). Without ``--index`` it builds a synthetic 20,000-INR index first (random
SIREN-scaled 2-32-32-1 weights, 28x28, 10 classes, a random-weight DWSNet): the cost of answering
does not depend on what the weights are, only on how many there are and on the encoder.

    python benchmarks/serve_load.py                                   # 20k synthetic INRs, 16 clients
    python benchmarks/serve_load.py --index runs/quickstart/index --clients 16 --seconds 20

The client shares the machine with the server: on 2 cores, the numbers are what one server
process answers while a load generator takes the other core.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_index(out: str, n: int = 20000, seed: int = 0) -> str:
    """A store of ``n`` random SIREN-scaled INRs and an index of them (built once, reused)."""
    index = os.path.join(out, f"index-{n}")
    if os.path.exists(os.path.join(index, "index.json")):
        return index
    import torch

    from ssl_ws import INRSpec, WeightNormalizer
    from ssl_ws.cli import main
    from ssl_ws.data import write_store
    from ssl_ws.models import build_encoder
    from ssl_ws.models.export import EmbeddingModel, save_encoder

    spec = INRSpec((2, 32, 32, 1), w0=30.0, output_offset=0.5)
    rng = np.random.default_rng(seed)
    cols = []
    for i, (o, d) in enumerate(spec.weight_shapes):
        bound = (1.0 / d) if i == 0 else (6.0 / d) ** 0.5 / spec.w0
        cols += [rng.uniform(-bound, bound, (n, o * d)), rng.uniform(-bound, bound, (n, o)) * (i > 0)]
    params = np.concatenate(cols, axis=1).astype(np.float32)
    labels = rng.integers(0, 10, n)
    ids = np.arange(n)
    store = os.path.join(out, f"store-{n}")
    write_store(store, params=params, labels=labels, object_ids=ids, view_ids=np.zeros(n, np.int64),
                psnr=np.full(n, 30.0, np.float32), splits={"train": [], "val": [], "test": ids.tolist()},
                meta={"spec": spec, "class_names": [str(c) for c in range(10)], "image_size": [28, 28], "channels": 1,
                      "fit": {"recipe": "dwsnets", "seed": 0}}, overwrite=True)
    torch.manual_seed(seed)
    enc = build_encoder("dwsnet", spec, hidden=16, n_layers=3, out_dim=64, num_heads=2)
    ckpt = os.path.join(out, "encoder.pt")
    save_encoder(EmbeddingModel(enc, WeightNormalizer.identity(spec), spec, dict(enc.config, name="dwsnet")), ckpt)
    assert main(["index", ckpt, store, "--split", "test", "--out", index, "--quiet"]) == 0
    return index


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_of(arr) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8), mode="L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


async def closed_loop(url: str, bodies, clients: int, seconds: float):
    """``clients`` coroutines, each posting the next body as soon as its answer came; for ``seconds``."""
    import httpx

    lat, fails, answers = [], [], []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def worker(c):
            i = c
            while time.perf_counter() < stop:
                body = bodies[i % len(bodies)]
                t = time.perf_counter()
                try:
                    r = await client.post("/query", json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError as exc:
                    ok, r = False, exc
                lat.append(time.perf_counter() - t)
                if ok:
                    answers.append((i % len(bodies), r.json()["results"][0]["neighbours"]))
                else:
                    fails.append(str(getattr(r, "text", r))[:200])
                i += clients

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in range(clients)))
        wall = time.perf_counter() - t0
    return np.asarray(lat), fails, answers, wall


def same(a, b, tol=1e-5) -> bool:
    if [(n["row"], n["label"]) for n in a] != [(n["row"], n["label"]) for n in b]:
        return False
    return all(abs(x["similarity"] - y["similarity"]) <= tol for x, y in zip(a, b))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", help="index to serve (default: a synthetic 20k-INR index under --work)")
    p.add_argument("--work", default="/tmp/ssl_ws_serve_load", help="where the synthetic index is built")
    p.add_argument("--size", type=int, default=20000, help="INRs of the synthetic index")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--image-clients", type=int, default=4)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--image-seconds", type=float, default=20.0)
    p.add_argument("--workers", type=int, default=1, help="server processes (ssl-ws serve --workers)")
    p.add_argument("--out", help="write the figures as JSON here")
    args = p.parse_args()

    import httpx

    index = args.index or synthetic_index(args.work, args.size)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "ssl_ws.cli", "serve", index, "--port", str(port),
                               "--workers", str(args.workers), "--log-level", "warning"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"server did not start: {server.stdout.read() if server.poll() is not None else ''}")
            time.sleep(0.3)
        info = httpx.get(url + "/info").json()
        rng = np.random.default_rng(0)
        lo, hi = info["rows"]
        id_bodies = [{"ids": [int(r)], "k": 10} for r in rng.integers(lo, hi + 1, 256)]
        h, w = info["image_size"]
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        img_bodies = [{"images": [png_of(0.5 + 0.5 * np.sin(6.28 * (f * xx + g * yy)))], "k": 10}
                      for f, g in rng.uniform(0.5, 3.0, (8, 2))]
        figures = {"index": index, "size": info["size"], "clients": args.clients, "image_clients": args.image_clients,
                   "workers": args.workers, "machine": f"{platform.node()} {os.cpu_count()} cores",
                   "command": "python " + shlex.join(sys.argv)}
        for kind, bodies, clients, seconds in (("ids", id_bodies, args.clients, args.seconds),
                                               ("images", img_bodies, args.image_clients, args.image_seconds)):
            reference = [httpx.post(url + "/query", json=b, timeout=300).json()["results"][0]["neighbours"]
                         for b in bodies]  # unloaded answers (also warms the server up)
            lat, fails, answers, wall = asyncio.run(closed_loop(url, bodies, clients, seconds))
            differ = sum(not same(ans, reference[i]) for i, ans in answers)
            q = np.percentile(lat * 1000, [50, 90, 99]) if len(lat) else [float("nan")] * 3
            figures[kind] = {"requests": int(len(lat)), "failed": len(fails), "differ_from_unloaded": int(differ),
                             "throughput_per_s": round(len(lat) / wall, 1), "p50_ms": round(float(q[0]), 1),
                             "p90_ms": round(float(q[1]), 1), "p99_ms": round(float(q[2]), 1)}
            print(f"{kind:>6}: {clients} clients x {seconds:g} s -> {len(lat)} requests, {len(lat) / wall:.1f}/s, "
                  f"p50 {q[0]:.1f} ms, p90 {q[1]:.1f} ms, p99 {q[2]:.1f} ms; {len(fails)} failed, "
                  f"{differ} answers differ from the unloaded ones", flush=True)
            if fails:
                print(f"        first failure: {fails[0]}")
        print(f"index {index} ({info['size']} INRs), server workers {args.workers}, {figures['machine']}")
        print("reproduce: " + figures["command"])
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(figures, fh, indent=2)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
