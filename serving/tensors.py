"""Request/response tensors: TF Serving's JSON formats and TensorProtos <-> numpy.

JSON (REST) follows TF Serving's predict API:
  * row format `{"instances": [{"user_id": "u1", "filter": "", "k": 10}, ...]}`
    -> `{"predictions": [{"item_ids": [...], "scores": [...], "count": 3}, ...]}`;
  * columnar format `{"inputs": {"user_id": ["u1"], "filter": [""], "k": 10}}`
    -> `{"outputs": {"item_ids": [[...]], "scores": [[...]], "count": [3]}}`;
  * binary strings are `{"b64": "<base64>"}`; string outputs whose name ends in
    `_bytes` (or that are not UTF-8) are written that way too;
  * a signature with one input (output) may use bare values.

Scalar inputs in row format (LiNR's `k` and `strategy` are scalars of the
signature) must carry the same value in every instance and are passed once;
TF Serving would stack them into a [B] tensor that the signature rejects.
"""

import base64
import binascii
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf

from serving.errors import invalid

MAX_ELEMENTS = 1 << 20     # per input tensor
MAX_DEPTH = 8


def _dtype_name(dtype: tf.DType) -> str:
  return dtype.name


def _shape_text(shape) -> str:
  return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def _leaf(value, dtype: tf.DType, where: str):
  """One JSON scalar as a Python value of `dtype`."""
  if dtype == tf.string:
    if isinstance(value, str):
      return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dict):
      if set(value) != {"b64"} or not isinstance(value["b64"], str):
        raise invalid(f"{where}: expected a string or {{\"b64\": <base64>}} "
                      f"object, got an object with keys {sorted(value)[:5]}")
      try:
        return base64.b64decode(value["b64"], validate=True)
      except (binascii.Error, ValueError):
        raise invalid(f"{where}: 'b64' value is not valid base64") from None
    raise invalid(f"{where}: JSON value {_short(value)} is not of expected "
                  "type: string")
  if isinstance(value, bool):
    if dtype == tf.bool:
      return value
    raise invalid(f"{where}: JSON value {_short(value)} is not of expected "
                  f"type: {_dtype_name(dtype)}")
  if dtype == tf.bool:
    raise invalid(f"{where}: JSON value {_short(value)} is not of expected "
                  "type: bool")
  if dtype.is_integer:
    if isinstance(value, int) or (isinstance(value, float) and
                                  value.is_integer()):
      value = int(value)
      if not dtype.min <= value <= dtype.max:
        raise invalid(f"{where}: JSON value {_short(value)} is out of range "
                      f"for {_dtype_name(dtype)}")
      return value
    raise invalid(f"{where}: JSON value {_short(value)} is not of expected "
                  f"type: {_dtype_name(dtype)}")
  if dtype.is_floating:
    if isinstance(value, (int, float)):
      return float(value)
    raise invalid(f"{where}: JSON value {_short(value)} is not of expected "
                  f"type: {_dtype_name(dtype)}")
  raise invalid(f"{where}: inputs of type {_dtype_name(dtype)} are not "
                "supported")


def _short(value) -> str:
  import json  # pylint: disable=g-import-not-at-top
  try:
    text = json.dumps(value)
  except (TypeError, ValueError):
    text = repr(value)
  return text if len(text) <= 60 else text[:57] + "..."


def _shape_of(value, where: str, depth: int = 0) -> List[int]:
  if isinstance(value, list):
    if depth >= MAX_DEPTH:
      raise invalid(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if not value:
      return [0]
    inner = _shape_of(value[0], where, depth + 1)
    for item in value[1:]:
      if _shape_of(item, where, depth + 1) != inner:
        raise invalid(f"{where}: lists of different lengths or depths (the "
                      "value is not a rectangular tensor)")
    return [len(value)] + inner
  return []


def _flatten(value, out: list):
  if isinstance(value, list):
    for item in value:
      _flatten(item, out)
  else:
    out.append(value)


def json_to_array(value, spec: tf.TensorSpec, where: str) -> np.ndarray:
  """A JSON value as an array of the spec's dtype (shape checked later)."""
  shape = _shape_of(value, where)
  n = int(np.prod(shape)) if shape else 1
  if n > MAX_ELEMENTS:
    raise invalid(f"{where}: {n} elements exceed the limit of {MAX_ELEMENTS}")
  flat = []
  _flatten(value, flat)
  leaves = [_leaf(v, spec.dtype, where) for v in flat]
  if spec.dtype == tf.string:
    arr = np.empty(len(leaves), dtype=object)
    arr[:] = leaves
  else:
    try:
      arr = np.array(leaves, dtype=spec.dtype.as_numpy_dtype)
    except (OverflowError, ValueError) as e:
      raise invalid(f"{where}: {e}") from None
  return arr.reshape(shape)


def check_inputs(signature, arrays: Dict[str, np.ndarray]) -> int:
  """Checks names, dtypes and shapes against the signature; returns B."""
  wanted = set(signature.inputs)
  sent = set(arrays)
  if sent != wanted:
    extra = sorted(sent - wanted)
    missing = sorted(wanted - sent)
    raise invalid(
        f"input size does not match signature: {len(sent)}!={len(wanted)} "
        f"len({{{','.join(sorted(sent))}}}) != "
        f"len({{{','.join(sorted(wanted))}}}). Sent extra: "
        f"{{{','.join(extra)}}}. Missing but required: "
        f"{{{','.join(missing)}}}.")
  batch = None
  for name, spec in signature.inputs.items():
    arr = arrays[name]
    if not spec.shape.is_compatible_with(arr.shape):
      raise invalid(f"input '{name}' has shape {_shape_text(arr.shape)}, the "
                    f"signature wants {_shape_text(spec.shape)}")
    if spec.shape.rank and spec.shape[0] is None:
      if batch is None:
        batch = arr.shape[0]
      elif arr.shape[0] != batch:
        raise invalid(f"inputs have different batch sizes ({batch} and "
                      f"{arr.shape[0]} for '{name}')")
  if batch == 0:
    raise invalid("the request holds no query (batch size 0)")
  return batch or 1


def parse_instances(signature, instances) -> Dict[str, np.ndarray]:
  """Row format -> named arrays."""
  if not isinstance(instances, list):
    raise invalid("'instances' must be a list")
  if not instances:
    raise invalid("'instances' is an empty list")
  names = list(signature.inputs)
  single = len(names) == 1
  columns: Dict[str, list] = {n: [] for n in names}
  for i, inst in enumerate(instances):
    if single and not isinstance(inst, dict):
      columns[names[0]].append(inst)
      continue
    if not isinstance(inst, dict):
      raise invalid(f"Expecting object but got {_json_kind(inst)} at item {i} "
                    "of input list")
    if i and set(inst) != set(instances[0]):
      raise invalid(f"Failed to process element: {i} of 'instances' list. "
                    "JSON object: has a different set of keys than item 0")
    for key, value in inst.items():
      if key not in columns:
        columns[key] = []
      columns[key].append(value)
  arrays = {}
  for name, values in columns.items():
    if not values:
      continue
    spec = signature.inputs.get(name)
    if spec is None:
      arrays[name] = np.zeros([len(values)])   # reported by check_inputs
      continue
    if spec.shape.rank == 0:                   # scalar input: same everywhere
      first = values[0]
      if any(v != first for v in values[1:]):
        raise invalid(f"input '{name}' is a scalar of the signature: every "
                      "instance must give the same value")
      arrays[name] = json_to_array(first, spec, f"input '{name}'")
    else:
      arrays[name] = json_to_array(values, spec, f"input '{name}'")
  return arrays


def parse_columns(signature, inputs) -> Dict[str, np.ndarray]:
  """Columnar format -> named arrays."""
  names = list(signature.inputs)
  if not isinstance(inputs, dict) or (len(names) == 1 and
                                      names[0] not in inputs):
    if len(names) == 1:
      inputs = {names[0]: inputs}
    else:
      raise invalid("'inputs' must be an object of named inputs for a "
                    f"signature with {len(names)} inputs")
  arrays = {}
  for name, value in inputs.items():
    spec = signature.inputs.get(name)
    if spec is None:
      arrays[name] = np.zeros([0])             # reported by check_inputs
      continue
    arrays[name] = json_to_array(value, spec, f"input '{name}'")
  return arrays


def _json_kind(value) -> str:
  return {list: "list", dict: "object", str: "string", bool: "bool",
          int: "number", float: "number"}.get(type(value), "null")


def _json_value(arr: np.ndarray, binary: bool):
  if arr.dtype == object:
    def conv(x):
      if isinstance(x, bytes):
        if not binary:
          try:
            return x.decode("utf-8")
          except UnicodeDecodeError:
            pass
        return {"b64": base64.b64encode(x).decode("ascii")}
      return x
    flat = [conv(x) for x in arr.reshape(-1)]
    return np.array(flat, dtype=object).reshape(arr.shape).tolist() \
        if arr.ndim else flat[0]
  return arr.tolist()


def outputs_to_json(outputs: Dict[str, np.ndarray], row_format: bool):
  """TF Serving's response body (`predictions` or `outputs`)."""
  names = sorted(outputs)
  if row_format:
    sizes = {outputs[n].shape[0] if outputs[n].ndim else None for n in names}
    if len(sizes) != 1 or None in sizes:
      raise invalid("Tensors in the response have different or no batch "
                    "dimension: use the 'inputs' (columnar) request format")
    (rows,) = sizes
    cols = {n: _json_value(outputs[n], n.endswith("_bytes")) for n in names}
    if len(names) == 1:
      return {"predictions": cols[names[0]]}
    return {"predictions": [{n: cols[n][i] for n in names}
                            for i in range(rows)]}
  cols = {n: _json_value(outputs[n], n.endswith("_bytes")) for n in names}
  if len(names) == 1:
    return {"outputs": cols[names[0]]}
  return {"outputs": cols}


# ---- TensorProto (gRPC) --------------------------------------------------------

def proto_to_array(proto, spec: tf.TensorSpec, name: str) -> np.ndarray:
  """A request TensorProto as an array; bounded before anything is allocated."""
  try:
    dtype = tf.dtypes.as_dtype(proto.dtype)
  except TypeError:
    raise invalid(f"input '{name}': unknown dtype enum {proto.dtype}") from None
  if dtype != spec.dtype:
    raise invalid(f"Expects arg '{name}' to be {spec.dtype.name} but "
                  f"{dtype.name} is provided")
  if proto.tensor_shape.unknown_rank:
    raise invalid(f"input '{name}': the tensor shape has unknown rank")
  dims = [d.size for d in proto.tensor_shape.dim]
  if len(dims) > MAX_DEPTH or any(d < 0 for d in dims):
    raise invalid(f"input '{name}': invalid tensor shape {dims}")
  n = 1
  for d in dims:
    n *= d
    if n > MAX_ELEMENTS:
      raise invalid(f"input '{name}': more than {MAX_ELEMENTS} elements")
  try:
    arr = tf.make_ndarray(proto)
  except Exception as e:  # pylint: disable=broad-except
    raise invalid(f"input '{name}': malformed tensor ({type(e).__name__}: "
                  f"{str(e)[:200]})") from None
  if list(arr.shape) != dims:
    raise invalid(f"input '{name}': tensor content does not match its shape "
                  f"{dims}")
  return arr


def array_to_proto(arr: np.ndarray):
  return tf.make_tensor_proto(arr)


def split_rows(outputs: Dict[str, np.ndarray], bounds: List[Tuple[int, int]]):
  """Per-request slices of a batched result."""
  return [{n: v[a:b] for n, v in outputs.items()} for a, b in bounds]
