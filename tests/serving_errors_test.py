"""Bad input gets TF Serving-style errors and the server keeps serving; a fuzz
run of >= 10k malformed REST and gRPC requests (loopback only) crashes nothing."""

import asyncio
import base64
import json
import random
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from linr_tf import export as export_lib
from serving_util import ServerProcess, predict_request, rest

LIMIT = 1 << 20
PREDICT = "/v1/models/linr:predict"


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
  model, _, _ = trained
  base = str(tmp_path_factory.mktemp("models") / "linr")
  export_lib.export(model, base)
  batching = tmp_path_factory.mktemp("cfg") / "batching.config"
  batching.write_text("max_batch_size { value: 16 }\n"
                      "batch_timeout_micros { value: 1000 }\n"
                      "num_batch_threads { value: 2 }\n")
  proc = ServerProcess([f"--model_base_path={base}", "--model_name=linr",
                        f"--batching_parameters_file={batching}",
                        f"--max_request_bytes={LIMIT}"])
  yield proc
  proc.stop()


def _ok(server):
  status, out = rest(server.rest_port, "POST", PREDICT, {
      "instances": [{"user_id": "u1", "filter": 'lang = "en"', "k": 3}]})
  return status == 200 and out["predictions"][0]["count"] == 3


def _inputs(**over):
  body = {"user_id": ["u1"], "filter": [""], "k": 3}
  body.update(over)
  return {k: v for k, v in body.items() if v is not None}


REST_CASES = [
    # (method, path, body, status, substring of the error)
    ("POST", PREDICT, '{"instances": [', 400, "JSON Parse error"),
    ("POST", PREDICT, "\xff\xfe", 400, "JSON Parse error"),
    ("POST", PREDICT, "[1, 2]", 400, "JSON object"),
    ("POST", PREDICT, {"signature_name": ""}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("POST", PREDICT, {"inputs": _inputs(), "instances": []}, 400, "both"),
    ("POST", PREDICT, {"inputs": _inputs(k="ten")}, 400, "int32"),
    ("POST", PREDICT, {"inputs": _inputs(k=1.5)}, 400, "int32"),
    ("POST", PREDICT, {"inputs": _inputs(user_id=[5])}, 400, "string"),
    ("POST", PREDICT, {"inputs": _inputs(user_id=[["u1"]])}, 400, "shape"),
    ("POST", PREDICT, {"inputs": _inputs(k=[3, 4])}, 400, "shape"),
    ("POST", PREDICT, {"inputs": _inputs(user_id=["u1", "u2"])}, 400,
     "batch sizes"),
    ("POST", PREDICT, {"inputs": _inputs(user_id=[["a"], "b"])}, 400,
     "rectangular"),
    ("POST", PREDICT, {"inputs": _inputs(k=None)}, 400,
     "Missing but required: {k}"),
    ("POST", PREDICT, {"inputs": _inputs(usr=["u1"])}, 400,
     "Sent extra: {usr}"),
    ("POST", PREDICT, {"inputs": _inputs(user_id=[{"b64": "%%%"}])}, 400,
     "base64"),
    ("POST", PREDICT, {"instances": []}, 400, "empty"),
    ("POST", PREDICT, {"instances": [{"user_id": "u1", "filter": "", "k": 3},
                                     {"user_id": "u2", "filter": "", "k": 4}]},
     400, "same value"),
    ("POST", PREDICT, {"instances": [1, 2]}, 400, "Expecting object"),
    ("POST", PREDICT, {"inputs": _inputs(), "signature_name": "nope"}, 400,
     'Serving signature name: "nope" not found'),
    ("POST", "/v1/models/nope:predict", {"inputs": _inputs()}, 404,
     "Servable not found for request: Latest(nope)"),
    ("POST", "/v1/models/linr/versions/9:predict", {"inputs": _inputs()}, 404,
     "Specific(linr, 9)"),
    ("POST", "/v1/models/linr/labels/canary:predict", {"inputs": _inputs()},
     400, "label"),
    ("GET", "/v1/models/nope", None, 404, "nope"),
    ("GET", "/v1/models/linr/versions/9", None, 404, "version 9"),
    ("GET", "/v1/models/linr/versions/9/metadata", None, 404, "linr, 9"),
    ("GET", "/v1/models", None, 400, "Missing model name"),
    ("PUT", PREDICT, {"inputs": _inputs()}, 400, "Malformed request"),
    ("POST", "/v1/models/linr:classify", {"inputs": _inputs()}, 501,
     "classify"),
    ("POST", PREDICT, {"inputs": _inputs(filter=['lang = "en" AND'])}, 400,
     "syntax error"),
    ("POST", PREDICT, {"inputs": _inputs(filter=['langg = "en"'])}, 400,
     "unknown attribute 'langg'"),
    ("POST", PREDICT, {"inputs": _inputs(filter=['lang = "klingon"'])}, 400,
     "klingon"),
    ("POST", PREDICT, {"inputs": _inputs(filter=["x" * 20000])}, 400,
     "exceeds the limit"),
    ("POST", PREDICT, {"inputs": _inputs(k=100000)}, 400, "k must be <= 4096"),
    ("POST", PREDICT, {"inputs": _inputs(k=0)}, 400, "k must be > 0"),
    ("POST", PREDICT, {"inputs": _inputs(k=2 ** 40)}, 400, "out of range"),
    ("POST", PREDICT, {"inputs": _inputs(user_id=["u"] * 40, filter=[""] * 40)},
     400, "larger than maximum input batch size"),
    ("POST", PREDICT, '{"inputs": ' + "[" * 100000 + "]" * 100000 + "}", 400,
     ""),
    ("POST", PREDICT, json.dumps({"inputs": _inputs(
        user_id=["u" * 1000] * 2000)}), 413, "exceeds the limit"),
]


@pytest.mark.parametrize("method,path,body,code,word", REST_CASES,
                         ids=[f"{i}:{c[4][:30]}" for i, c in
                              enumerate(REST_CASES)])
def test_rest_bad_input(server, method, path, body, code, word):
  status, out = rest(server.rest_port, method, path, body)
  assert status == code, out
  assert isinstance(out, dict) and set(out) == {"error"}, out
  assert word in out["error"]
  assert server.alive()


def _tensor(dtype, dims, **fields):
  t = tensor_pb2.TensorProto(dtype=dtype, **fields)
  for d in dims:
    t.tensor_shape.dim.add().size = d
  return t


def test_grpc_bad_input(server):
  good = {"user_id": (["u1"], tf.string), "filter": ([""], tf.string),
          "k": (3, tf.int32)}
  cases = []
  req = predict_request("linr", good)
  req.inputs["k"].CopyFrom(tf.make_tensor_proto(3.0, tf.float32))
  cases.append((req, grpc.StatusCode.INVALID_ARGUMENT, "to be int32"))
  req = predict_request("linr", good)
  req.inputs["user_id"].CopyFrom(_tensor(tf.string.as_datatype_enum,
                                         [1 << 40]))
  cases.append((req, grpc.StatusCode.INVALID_ARGUMENT, "elements"))
  req = predict_request("linr", good)
  req.inputs["k"].CopyFrom(_tensor(tf.int32.as_datatype_enum, [2, 3],
                                   tensor_content=b"\x00" * 5))
  cases.append((req, grpc.StatusCode.INVALID_ARGUMENT, "malformed"))
  req = predict_request("linr", good)
  req.inputs["k"].CopyFrom(_tensor(999, []))
  cases.append((req, grpc.StatusCode.INVALID_ARGUMENT, "dtype"))
  req = predict_request("linr", good)
  req.inputs["filter"].CopyFrom(tf.make_tensor_proto(["topic = ai OR"]))
  cases.append((req, grpc.StatusCode.INVALID_ARGUMENT, "filter"))
  req = predict_request("", good)
  cases.append((req, grpc.StatusCode.INVALID_ARGUMENT, "name"))
  req = predict_request("linr", good, label="nope")
  cases.append((req, grpc.StatusCode.INVALID_ARGUMENT, "label"))
  req = predict_request("linr", dict(good, k=(5000, tf.int32)))
  cases.append((req, grpc.StatusCode.INVALID_ARGUMENT, "k must be <= 4096"))
  req = predict_request("linr", good)
  req.output_filter.append("nope")
  cases.append((req, grpc.StatusCode.INVALID_ARGUMENT, "nope"))
  req = predict_request("linr", good)
  req.inputs["user_id"].CopyFrom(tf.make_tensor_proto(
      np.array([b"x" * 1000] * 1100, dtype=object)))
  cases.append((req, grpc.StatusCode.RESOURCE_EXHAUSTED, ""))
  with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for req, code, word in cases:
      with pytest.raises(grpc.RpcError) as e:
        stub.Predict(req, timeout=60)
      assert e.value.code() == code, e.value.details()
      assert word in (e.value.details() or "")
    meta = get_model_metadata_pb2.GetModelMetadataRequest()
    meta.model_spec.name = "linr"
    with pytest.raises(grpc.RpcError) as e:
      stub.GetModelMetadata(meta, timeout=60)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    garbage = channel.unary_unary(
        "/tensorflow.serving.PredictionService/Predict",
        request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError):
      garbage(b"\xff\x00garbage\x12", timeout=60)
  assert server.alive() and _ok(server)


# ---- fuzz -----------------------------------------------------------------------

TOKENS = ["lang", "topic", "type", "country", "langg", "=", "!=", "IN", "in",
          "AND", "and", "OR", "NOT", "(", ")", ",", '"en"', "'ai'", "en", "ai",
          '"', "'", "\\", "<", ">=", "ALL", "post", "\x00", "\u00e9", "\U0001F600",
          "  ", "1e5", "-", "__live__", "age_hours", "24"]


def _rand_json(rng, depth=0):
  kind = rng.randrange(8 if depth < 3 else 5)
  if kind == 0:
    return rng.choice([None, True, False])
  if kind == 1:
    return rng.choice([0, -1, 3, 4097, 2 ** 31, 2 ** 70, 1.5, -0.0, 1e308])
  if kind == 2:
    return "".join(rng.choice(TOKENS) for _ in range(rng.randrange(6)))
  if kind == 3:
    return {"b64": rng.choice(["", "dTE=", "!!", "dTE"])}
  if kind == 4:
    return rng.choice(["u1", "", "u99999"])
  if kind == 5:
    return [_rand_json(rng, depth + 1) for _ in range(rng.randrange(4))]
  return {rng.choice(["user_id", "filter", "k", "strategy", "x", ""]):
          _rand_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def _rest_case(rng):
  kind = rng.randrange(7)
  method, path = "POST", PREDICT
  if kind == 0:
    return method, path, bytes(rng.randrange(256)
                               for _ in range(rng.randrange(200)))
  if kind == 1:
    good = json.dumps({"instances": [{"user_id": "u1", "filter": 'lang = "en"',
                                      "k": 3}]})
    return method, path, good[:rng.randrange(len(good))].encode()
  if kind == 2:   # right structure, random filter (reaches the model)
    text = " ".join(rng.choice(TOKENS) for _ in range(rng.randrange(1, 9)))
    body = {"inputs": {"user_id": ["u%d" % rng.randrange(50)],
                       "filter": [text], "k": rng.choice([1, 5, 10])}}
    return method, path, json.dumps(body).encode()
  if kind == 3:   # random values for each input
    body = {"inputs": {n: _rand_json(rng) for n in ("user_id", "filter", "k")
                       if rng.random() < 0.85}}
    if rng.random() < 0.3:
      body = {"instances": [body["inputs"]] * rng.randrange(3)}
    return method, path, json.dumps(body).encode()
  if kind == 4:
    return method, path, json.dumps(_rand_json(rng)).encode()
  if kind == 5:   # random paths and methods
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH"])
    path = rng.choice([
        "/v1/models/%s:predict" % rng.choice(["linr", "x", "LINR", "%20"]),
        "/v1/models/linr/versions/%s:predict" % rng.choice(
            ["0", "1", "99999999999999999999", "-1"]),
        "/v1/models/linr/labels/%s" % rng.choice(["a", "stable"]),
        "/v1/models/linr/metadata", "/v1/", "/", "/v2/x", "/v1/models/linr",
        "/v1/models/linr:regress"])
    return method, path, json.dumps(_rand_json(rng)).encode()
  body = {"signature_name": rng.choice(["", "retrieve_with_options", 5,
                                         "serving_default"]),
          "inputs": {"user_id": ["u1"], "filter": [""],
                     "k": rng.choice([-5, 0, 1, 4096, 4097, "3"]),
                     "strategy": rng.choice(["mask", "fast", 3, ["a"]])}}
  return method, path, json.dumps(body).encode()


def _grpc_case(rng):
  req = predict_pb2.PredictRequest()
  req.model_spec.name = rng.choice(["linr", "linr", "x", ""])
  r = rng.random()
  if r < 0.2:
    req.model_spec.version.value = rng.choice([0, 1, 2, -1, 2 ** 62])
  elif r < 0.3:
    req.model_spec.version_label = rng.choice(["", "a", "stable"])
  req.model_spec.signature_name = rng.choice(["", "", "retrieve_with_options",
                                               "bogus"])
  for name in ("user_id", "filter", "k", "strategy", "zz"):
    if rng.random() < 0.25:
      continue
    t = req.inputs[name]
    t.dtype = rng.choice([0, 1, 3, 7, 7, 7, 9, 10, 23, 77, -3])
    for _ in range(rng.randrange(4)):
      t.tensor_shape.dim.add().size = rng.choice([0, 1, 1, 2, 3, -1, 1 << 40])
    if rng.random() < 0.05:
      t.tensor_shape.unknown_rank = True
    c = rng.randrange(5)
    if c == 0:
      t.string_val.extend(
          " ".join(rng.choice(TOKENS) for _ in range(rng.randrange(5))).encode(
              "utf-8", "surrogatepass") for _ in range(rng.randrange(4)))
    elif c == 1:
      t.tensor_content = bytes(rng.randrange(256)
                               for _ in range(rng.randrange(40)))
    elif c == 2:
      t.int_val.extend(rng.randrange(-10, 5000) for _ in range(rng.randrange(3)))
    elif c == 3:
      t.float_val.extend(rng.random() for _ in range(rng.randrange(3)))
  if rng.random() < 0.1:
    req.output_filter.append(rng.choice(["count", "nope", ""]))
  return req


def test_fuzz_10k_malformed_requests(server):
  import aiohttp  # pylint: disable=g-import-not-at-top
  rng = random.Random(1234)
  n_rest, n_grpc = 8000, 3000
  rest_cases = [_rest_case(rng) for _ in range(n_rest)]
  grpc_cases = [_grpc_case(rng) for _ in range(n_grpc)]
  start = time.time()
  budget = 150.0
  statuses = {}
  bad = []

  async def run_rest():
    conn = aiohttp.TCPConnector(limit=16)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=conn,
                                     timeout=timeout) as session:
      queue = list(reversed(rest_cases))

      async def worker():
        while queue and time.time() - start < budget:
          method, path, body = queue.pop()
          url = f"http://127.0.0.1:{server.rest_port}{path}"
          async with session.request(method, url, data=body) as resp:
            text = await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            try:
              doc = json.loads(text)
            except ValueError:
              doc = None
            if resp.status >= 500 and resp.status != 501 or not (
                isinstance(doc, dict) and doc):
              bad.append((method, path, body[:200], resp.status, text[:300]))
      await asyncio.gather(*[worker() for _ in range(16)])

  asyncio.run(run_rest())
  codes = {}
  with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for i in range(0, n_grpc, 50):
      if time.time() - start > budget:
        break
      futures = [stub.Predict.future(r, timeout=120)
                 for r in grpc_cases[i:i + 50]]
      for req, f in zip(grpc_cases[i:i + 50], futures):
        try:
          f.result()
          code = grpc.StatusCode.OK
        except grpc.RpcError as e:
          code = e.code()
          if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
                      grpc.StatusCode.UNAVAILABLE):
            bad.append(("grpc", str(req)[:300], code, e.details()))
        codes[code] = codes.get(code, 0) + 1
  elapsed = time.time() - start
  total = sum(statuses.values()) + sum(codes.values())
  print(f"fuzz: {total} requests in {elapsed:.1f}s; REST {statuses}; "
        f"gRPC {codes}")
  assert not bad, bad[:5]
  assert total >= 10000, (total, elapsed)
  assert server.alive(), server.log()
  assert _ok(server)
