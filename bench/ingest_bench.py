"""Live updates benchmark: ingestion throughput, freshness, query latency.

    .venv/bin/python bench/ingest_bench.py [--items=1000000] [--dim=64] \
        [--rate=1000] [--seconds=30] [--sources=local,redis]

1. An exported model (demo config, dim 64, untrained towers) whose live index
   is filled with N random unit vectors + random attributes through
   `LiveIndex.upsert_embeddings` (inserts, growing the index).
2. Sustained updates/s: `upsert_embeddings` batches overwriting existing
   items (batch 1k and 10k), and the whole ingestor pipeline (JSON decode,
   validation, round splitting, apply) over a pre-written local log.
3. Query latency, B=1, k=100, without and with a filter, idle.
4. Freshness at an offered load of `rate` updates/s: a producer process
   publishes upsert_embedding events (stamped with their event time) to the
   local log and to Redis Streams (redis-server on a free loopback port); the
   ingestor runs in this process; a query thread measures latency meanwhile.

Writes bench/results/ingest.json. The producer, the ingestor and the queries
share the machine's cores.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

import linr_tf  # noqa: E402,F401  (Keras 2 before TensorFlow)
import numpy as np  # noqa: E402

from linr_tf import ingest  # noqa: E402
from linr_tf.ingest import events as ev  # noqa: E402
from linr_tf.ingest import ingestor as ingestor_lib  # noqa: E402
from linr_tf.ingest import local_log  # noqa: E402

FILTER = 'lang = "en" AND type IN ("post", "article")'


def build_export(work, dim):
  import dataclasses  # pylint: disable=g-import-not-at-top
  from linr_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from linr_tf import data as data_lib  # pylint: disable=g-import-not-at-top
  from linr_tf import training  # pylint: disable=g-import-not-at-top
  cfg = config_lib.load(os.path.join(REPO, "configs", "demo.json"))
  cfg = dataclasses.replace(cfg, embedding_dim=dim)
  d = os.path.join(work, "feed")
  data_lib.generate_feed(d, num_users=200, num_items=2000,
                         interactions_per_user=5, seed=1)
  return training.export_untrained(cfg, d, os.path.join(work, "export"))


def categorical_values(schema):
  out = {}
  for key in schema.keys[1:]:
    attr, sep, value = key.partition("=")
    if sep and "@" not in attr:
      out.setdefault(attr, []).append(value)
  return out


def random_attributes(live, rng, n):
  values = categorical_values(live.schema)
  cols = {}
  for a in live.attributes:
    if a in live.schema.numeric_attributes:
      cols[a] = rng.uniform(0, 400, n).astype(np.float32)
    else:
      cols[a] = np.array(values[a], dtype=object)[rng.integers(0, len(values[a]), n)]
  return cols


def unit(rng, n, dim):
  v = rng.normal(size=(n, dim)).astype(np.float32)
  return v / np.linalg.norm(v, axis=1, keepdims=True)


def pct(xs):
  xs = np.asarray(xs, np.float64) * 1000
  return {"p50_ms": round(float(np.percentile(xs, 50)), 2),
          "p99_ms": round(float(np.percentile(xs, 99)), 2),
          "mean_ms": round(float(xs.mean()), 2), "n": int(xs.size)}


def query_latency(live, rng, filters, n, stop=None):
  out = {f or "(none)": [] for f in filters}
  i = 0
  while (stop is None and i < n) or (stop is not None and not stop.is_set()):
    q = unit(rng, 1, live.dim)
    for f in filters:
      t = time.perf_counter()
      live.search_embeddings(q, [f], 100)
      out[f or "(none)"].append(time.perf_counter() - t)
    i += 1
  return out


def fill(live, n, rng, batch=10000):
  t0 = time.perf_counter()
  for start in range(0, n, batch):
    m = min(batch, n - start)
    ids = np.array([f"i{j}" for j in range(start, start + m)], dtype=object)
    live.upsert_embeddings(ids, np.ones(m, np.int64), unit(rng, m, live.dim),
                           random_attributes(live, rng, m))
  return n / (time.perf_counter() - t0)


def overwrite_rate(live, n_items, rng, batch, seconds, version0):
  done, t0, v = 0, time.perf_counter(), version0
  while time.perf_counter() - t0 < seconds:
    ids = rng.choice(n_items, batch, replace=False)
    v += 1
    applied = live.upsert_embeddings(
        np.array([f"i{j}" for j in ids], dtype=object),
        np.full(batch, v, np.int64), unit(rng, batch, live.dim),
        random_attributes(live, rng, batch))
    assert applied.all()
    done += batch
  return done / (time.perf_counter() - t0), v


def event_lines(live, rng, n, n_items, version, now=None):
  cols = random_attributes(live, rng, n)
  emb = unit(rng, n, live.dim)
  ids = rng.integers(0, n_items, n)
  lines = []
  for k in range(n):
    attrs = {a: (float(cols[a][k]) if a in live.schema.numeric_attributes
                 else str(cols[a][k])) for a in live.attributes}
    lines.append(ev.upsert_embedding(
        f"i{ids[k]}", version + k, np.round(emb[k], 6), attrs,
        now if now is not None else time.time()).to_json())
  return lines


def pipeline_rate(live, work, n_items, rng, n_events, version):
  """Records/s through the whole ingestor from a pre-written local log."""
  log_dir = os.path.join(work, "pipe-log")
  with local_log.LocalLogWriter(log_dir) as w:
    for i in range(0, n_events, 10000):
      w.append(event_lines(live, rng, min(10000, n_events - i), n_items,
                           version + i, now=time.time()))
  ing = ingestor_lib.Ingestor(live, local_log.LocalLogSource(log_dir),
                              os.path.join(work, "pipe-snap"),
                              batch_size=4096, snapshot_interval_s=1e9,
                              log_interval_s=1e9)
  ing.recover()
  t0 = time.perf_counter()
  while ing.offset is None or ing.offset < n_events - 1:
    ing.poll(timeout_s=0.5)
  rate = n_events / (time.perf_counter() - t0)
  m = ing.metrics()
  ing.close()
  assert m["applied"] + m["duplicate"] + m["dead_lettered"] == n_events, m
  return rate


PRODUCER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
url, rate, seconds, path = sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
lines = [json.loads(l) for l in open(path)]
if url.startswith("local:"):
    from linr_tf.ingest.local_log import LocalLogWriter
    w = LocalLogWriter(url[6:]); publish = w.append
else:
    import redis
    from linr_tf.ingest import redis_stream
    p = redis_stream.parse_url(url)
    client = redis.Redis(host=p["host"], port=p["port"])
    publish = lambda recs: redis_stream.publish(client, p["stream"], recs)
print("ready", flush=True)
sys.stdin.readline()
tick = 0.01
per_tick = rate * tick
start = time.monotonic(); sent = 0; i = 0
while time.monotonic() - start < seconds:
    due = int((time.monotonic() - start) / tick * per_tick) + 1
    if due > sent:
        now = time.time(); out = []
        for _ in range(due - sent):
            d = lines[i % len(lines)]; d["event_time"] = now
            d["version"] = 10**9 + i; i += 1
            out.append(json.dumps(d, separators=(",", ":")))
        publish(out); sent = due
    time.sleep(tick / 2)
print(sent, flush=True)
"""


def freshness_run(live, work, url, rate, seconds, rng, n_items):
  """Offered load `rate`/s for `seconds`; returns freshness + latencies."""
  template = os.path.join(work, "template.jsonl")
  with open(template, "w", encoding="utf-8") as f:
    f.write("\n".join(event_lines(live, rng, 2000, n_items, 0)) + "\n")
  snap = tempfile.mkdtemp(dir=work, prefix="snap-")
  env = dict(os.environ, PYTHONPATH=REPO)
  prod = subprocess.Popen([sys.executable, "-c", PRODUCER, REPO, url,
                           str(rate), str(seconds), template],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          env=env, text=True)
  assert prod.stdout.readline().strip() == "ready"
  ing = ingestor_lib.Ingestor(live, ingest.open_source(url), snap,
                              batch_size=4096, poll_timeout_s=0.05,
                              snapshot_interval_s=1e9, log_interval_s=10)
  ing.recover()
  # Skip what an earlier run left in the stream.
  while ing.poll(timeout_s=0.2):
    pass
  ing.stats = type(ing.stats)()
  stop = threading.Event()
  runner = threading.Thread(target=ing.run, args=(stop,))
  runner.start()
  lat_stop = threading.Event()
  lat = {}
  qt = threading.Thread(target=lambda: lat.update(query_latency(
      live, np.random.default_rng(9), ["", FILTER], 0, lat_stop)))
  prod.stdin.write("go\n")
  prod.stdin.flush()
  qt.start()
  sent = int(prod.stdout.readline())
  prod.wait()
  lat_stop.set()
  qt.join()
  deadline = time.monotonic() + 30
  while ing.stats.counters["records"] < sent and time.monotonic() < deadline:
    time.sleep(0.1)
  stop.set()
  runner.join()
  ing.close()
  m = ing.stats.to_dict()
  return {"offered_per_s": rate, "seconds": seconds, "sent": sent,
          "applied": m["applied"], "freshness": {
              k.replace("_s", "_ms"): (round(v * 1000, 2)
                                       if isinstance(v, float) else v)
              for k, v in m["freshness"].items()},
          "query_latency_during": {k: pct(v) for k, v in lat.items()}}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--items", type=int, default=1_000_000)
  ap.add_argument("--dim", type=int, default=64)
  ap.add_argument("--rate", type=float, default=1000)
  ap.add_argument("--seconds", type=float, default=30)
  ap.add_argument("--sources", default="local,redis")
  ap.add_argument("--pipeline_events", type=int, default=100_000)
  ap.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                "ingest.json"))
  args = ap.parse_args()
  from linr_tf.index.live_index import LiveIndex  # pylint: disable=g-import-not-at-top
  work = tempfile.mkdtemp(prefix="linr-ingest-bench-")
  rng = np.random.default_rng(0)
  res = {"machine": f"{platform.processor() or platform.machine()}, "
                    f"{os.cpu_count()} cores, {platform.platform()}",
         "command": "python bench/ingest_bench.py " + " ".join(sys.argv[1:]),
         "items": args.items, "dim": args.dim}
  try:
    live = LiveIndex.load(build_export(work, args.dim))
    t = time.perf_counter()
    res["fill_upserts_per_s"] = round(fill(live, args.items, rng))
    print(f"filled {args.items} items in {time.perf_counter() - t:.1f} s "
          f"({res['fill_upserts_per_s']}/s)", flush=True)
    v = 1
    rates = {}
    for batch in (1000, 10000):
      r, v = overwrite_rate(live, args.items, rng, batch, 10, v)
      rates[str(batch)] = round(r)
      print(f"upsert_embeddings batch {batch}: {r:.0f} updates/s", flush=True)
    res["upsert_embeddings_updates_per_s"] = rates
    res["pipeline_records_per_s"] = round(pipeline_rate(
        live, work, args.items, rng, args.pipeline_events, 10**6))
    print(f"ingestor pipeline: {res['pipeline_records_per_s']} records/s",
          flush=True)
    idle = query_latency(live, np.random.default_rng(5), ["", FILTER], 300)
    res["query_latency_idle"] = {k: pct(x) for k, x in idle.items()}
    print("idle query latency", res["query_latency_idle"], flush=True)
    res["freshness"] = {}
    for name in args.sources.split(","):
      server = None
      if name == "local":
        url = "local:" + os.path.join(work, "fresh-log")
      else:
        sys.path.insert(0, os.path.join(REPO, "tests"))
        from ingest_helpers import RedisServer  # pylint: disable=g-import-not-at-top
        server = RedisServer().start()
        url = server.url("changes")
      try:
        r = freshness_run(live, work, url, args.rate, args.seconds, rng,
                          args.items)
      finally:
        if server:
          server.stop()
      res["freshness"][name] = r
      print(name, json.dumps(r), flush=True)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w", encoding="utf-8") as f:
    json.dump(res, f, indent=1)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
