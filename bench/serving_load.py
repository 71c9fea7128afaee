"""Load benchmark of the model server (loopback only, bounded in time).

    .venv/bin/python bench/serving_load.py [--items=1000000] [--seconds=10]

Builds a model whose index holds N random unit vectors with random attributes,
exports it (fast path), starts `python -m serving` on 127.0.0.1 without and
with dynamic batching, and drives batch-1 filtered queries at concurrency
1/16/64 over REST and gRPC (closed loop: each client sends its next request
when the previous answer arrives). Reports QPS, p50/p99 latency and errors;
writes bench/results/serving_load.json and bench/results/serving_load.md (the
section that bench/RESULTS.md quotes).
The load generator shares the machine's cores with the server. On a GPU
machine the server places the index in HBM; this process stays on the CPU.
"""

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

import linr_tf  # noqa: E402  (Keras 2 before TensorFlow)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# This process builds and exports the model and drives the load: it keeps off
# any GPU (the SavedModel's device is chosen when the server loads it; a GPU
# held here would leave the server none).
tf.config.set_visible_devices([], "GPU")

from linr_tf import config as config_lib  # noqa: E402
from linr_tf import export as export_lib  # noqa: E402
from linr_tf import model as model_lib  # noqa: E402
from linr_tf.attributes import AttributeSchema, set_live  # noqa: E402

ATTRS = {
    "lang": ["en", "de", "fr", "es", "pt", "ja"],
    "country": ["us", "in", "de", "br", "fr", "jp", "gb", "ca"],
    "type": ["post", "article", "video", "job"],
    "topic": ["ai", "ml", "food", "careers", "sports", "travel", "music",
              "finance", "health", "design"],
}
FILTERS = [
    "",                                                   # 100%
    'lang = "en"',                                        # ~17%
    'type IN ("post", "article")',                        # 50%
    'topic = "ai" AND country IN ("us", "in")',           # ~5%
    'lang = "de" AND type = "video" AND topic = "ml"',    # ~0.4%
]
K = 10
USERS = 1000


def build_model(n_items: int, dim: int, seed: int = 0, vectors: str = "float32"):
  cfg = config_lib.load(os.path.join(REPO, "configs", "demo.json"))
  cfg = dataclasses.replace(cfg, embedding_dim=dim, hidden_units=[64],
                            index=dataclasses.replace(cfg.index, vectors=vectors))
  rng = np.random.default_rng(seed)
  columns = {a: np.array(v)[rng.integers(0, len(v), n_items)]
             for a, v in ATTRS.items()}
  schema = AttributeSchema.from_columns(
      {a: np.array(v) for a, v in ATTRS.items()})
  vocab = {"user_id": [f"u{i}" for i in range(USERS)], "item_id": ["p0"]}
  for spec in cfg.item_features:
    if not spec.is_numeric and spec.name not in vocab:
      vocab[spec.name] = ATTRS.get(spec.name, ["x"])
  model = model_lib.RetrievalModel(cfg, vocab, schema.keys)
  model.query_tower({"user_id": tf.constant(["u1"])})
  emb = rng.standard_normal((n_items, dim), dtype=np.float32)
  emb /= np.linalg.norm(emb, axis=1, keepdims=True)
  ids = np.char.add("i", np.arange(n_items).astype(str)).astype(object)
  model.index.assign(ids, emb, encode_single_valued(schema, columns))
  return model


def encode_single_valued(schema, columns):
  """`schema.encode` for single-valued categorical columns, vectorised (the
  15.5M-item GPU index is built in seconds): bit of "attr=value" per row."""
  bit = {key: i for i, key in enumerate(schema.keys)}
  words = np.zeros((len(next(iter(columns.values()))), schema.num_words), np.uint32)
  for attr, values in columns.items():
    vocab, codes = np.unique(values, return_inverse=True)
    bits = np.array([bit[f"{attr}={v}"] for v in vocab], np.int64)[codes]
    for w in np.unique(bits // 32):
      rows = bits // 32 == w
      words[rows, w] |= np.left_shift(np.uint32(1), (bits[rows] % 32).astype(np.uint32))
  return set_live(words.view(np.int32))


def start_server(base, batching_file=None):
  from serving_util import ServerProcess  # pylint: disable=g-import-not-at-top
  args = [f"--model_base_path={base}", "--model_name=linr",
          "--file_system_poll_wait_seconds=0"]
  if batching_file:
    args.append(f"--batching_parameters_file={batching_file}")
  return ServerProcess(args, timeout=600)


async def drive(proto, port, concurrency, seconds, seed):
  """Closed-loop clients; returns latencies (ms) and error count."""
  import aiohttp  # pylint: disable=g-import-not-at-top
  import grpc  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  rng = random.Random(seed)
  lat, errors = [], [0]
  first_error = []
  k_proto = tf.make_tensor_proto(K, tf.int32)
  warm_until = time.perf_counter() + 1.0
  stop_at = warm_until + seconds

  def pick():
    return f"u{rng.randrange(USERS)}", rng.choice(FILTERS)

  if proto == "rest":
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency + 4),
        timeout=aiohttp.ClientTimeout(total=120))
    url = f"http://127.0.0.1:{port}/v1/models/linr:predict"

    async def call():
      user, text = pick()
      body = json.dumps({"instances": [{"user_id": user, "filter": text,
                                        "k": K}]})
      async with session.post(url, data=body, headers={
          "Content-Type": "application/json"}) as resp:
        data = await resp.read()
        ok = resp.status == 200 and b'"predictions"' in data
        if not ok and not first_error:
          first_error.append(f"HTTP {resp.status}: {data[:500]!r}")
        return ok
  else:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    async def call():
      user, text = pick()
      req = predict_pb2.PredictRequest()
      req.model_spec.name = "linr"
      req.inputs["user_id"].dtype = tf.string.as_datatype_enum
      req.inputs["user_id"].tensor_shape.dim.add().size = 1
      req.inputs["user_id"].string_val.append(user.encode())
      req.inputs["filter"].dtype = tf.string.as_datatype_enum
      req.inputs["filter"].tensor_shape.dim.add().size = 1
      req.inputs["filter"].string_val.append(text.encode())
      req.inputs["k"].CopyFrom(k_proto)
      try:
        await stub.Predict(req, timeout=120)
        return True
      except grpc.aio.AioRpcError as e:
        if not first_error:
          first_error.append(f"{e.code()}: {e.details()[:500]}")
        return False

  async def client():
    while True:
      t0 = time.perf_counter()
      if t0 >= stop_at:
        return
      ok = await call()
      t1 = time.perf_counter()
      if t0 >= warm_until:
        lat.append((t1 - t0) * 1e3)
        if not ok:
          errors[0] += 1

  try:
    await asyncio.gather(*[client() for _ in range(concurrency)])
  finally:
    if proto == "rest":
      await session.close()
    else:
      await channel.close()
  return lat, errors[0], (first_error or [None])[0]


def machine():
  cpu = ""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          cpu = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
          "tensorflow": tf.__version__}


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--items", type=int, default=1_000_000)
  p.add_argument("--dim", type=int, default=64)
  p.add_argument("--seconds", type=float, default=10.0)
  p.add_argument("--concurrency", default="1,16,64")
  p.add_argument("--workdir", default="/tmp/linr_serving_bench")
  p.add_argument("--max_batch_size", type=int, default=32)
  p.add_argument("--batch_timeout_micros", type=int, default=2000)
  p.add_argument("--vectors", default="float32", help="index vector dtype")
  p.add_argument("--batching", default="off,on", help="which server modes to run")
  p.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                "serving_load.json"))
  p.add_argument("--md", default=os.path.join(REPO, "bench", "results",
                                              "serving_load.md"))
  args = p.parse_args()
  levels = [int(c) for c in args.concurrency.split(",")]
  shutil.rmtree(args.workdir, ignore_errors=True)
  base = os.path.join(args.workdir, "model")
  t0 = time.time()
  model = build_model(args.items, args.dim, vectors=args.vectors)
  path = export_lib.export(model, base, version=1)
  del model
  size = sum(os.path.getsize(os.path.join(d, f))
             for d, _, fs in os.walk(path) for f in fs)
  print(f"exported {args.items} items x {args.dim} to {path} "
        f"({size / 2**20:.0f} MiB) in {time.time() - t0:.0f} s", flush=True)
  batching_file = os.path.join(args.workdir, "batching.config")
  with open(batching_file, "w") as f:
    f.write(f"max_batch_size {{ value: {args.max_batch_size} }}\n"
            f"batch_timeout_micros {{ value: {args.batch_timeout_micros} }}\n"
            "max_enqueued_batches { value: 1000 }\n"
            "num_batch_threads { value: 2 }\n")
  rows = []
  for batching in [mode == "on" for mode in args.batching.split(",")]:
    server = start_server(base, batching_file if batching else None)
    try:
      for proto in ("rest", "grpc"):
        port = server.rest_port if proto == "rest" else server.grpc_port
        for c in levels:
          lat, errors, first_error = asyncio.run(drive(proto, port, c, args.seconds,
                                                       seed=c))
          lat = np.array(lat)
          row = {"batching": batching, "protocol": proto, "concurrency": c,
                 "requests": int(lat.size), "errors": errors,
                 "qps": round(lat.size / args.seconds, 1),
                 "p50_ms": round(float(np.percentile(lat, 50)), 2),
                 "p99_ms": round(float(np.percentile(lat, 99)), 2)}
          if first_error:
            row["first_error"] = first_error
            row["server_log_tail"] = server.log()[-1500:]
          rows.append(row)
          print(json.dumps(row), flush=True)
          if not server.alive():
            raise RuntimeError("server died:\n" + server.log())
    finally:
      server.stop()
  result = {"machine": machine(), "items": args.items, "dim": args.dim,
            "k": K, "filters": FILTERS, "seconds_per_cell": args.seconds,
            "batching_parameters": {"max_batch_size": args.max_batch_size,
                                    "batch_timeout_micros":
                                        args.batch_timeout_micros,
                                    "num_batch_threads": 2},
            "command": " ".join(["bench/serving_load.py"] + sys.argv[1:]),
            "rows": rows}
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  m = result["machine"]
  lines = [
      "## Serving load (bench/serving_load.py)", "",
      f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
      f"TensorFlow {m['tensorflow']}; server and load generator on the same "
      "cores, loopback only.", "",
      f"Command: `.venv/bin/python {result['command']}`", "",
      f"N = {args.items:,} items x {args.dim} dims (fast export, custom ops), "
      f"k = {K}, batch-1 requests, filters drawn uniformly from "
      f"{len(FILTERS)} (pass rates 100% to ~0.4%), closed-loop clients, "
      f"{args.seconds:g} s per cell after 1 s warm-up. Batching: "
      f"max_batch_size {args.max_batch_size}, batch_timeout_micros "
      f"{args.batch_timeout_micros}, num_batch_threads 2.", "",
      "| batching | API | concurrency | requests | QPS | p50 ms | p99 ms | errors |",
      "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {'on' if r['batching'] else 'off'} | {r['protocol']} | "
                 f"{r['concurrency']} | {r['requests']} | {r['qps']} | "
                 f"{r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")
  with open(args.md, "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))
  return 0 if all(r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
  sys.exit(main())
