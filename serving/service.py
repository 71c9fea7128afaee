"""What REST and gRPC share: predict, model status and metadata."""

import logging
from typing import Dict, Optional

import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from serving import tensors
from serving.batching import Executor
from serving.errors import ServingError, invalid
from serving.manager import ModelManager

log = logging.getLogger("serving")


class PredictService:

  def __init__(self, manager: ModelManager, executor: Executor,
               max_filter_bytes: int = 8192):
    self.manager = manager
    self.executor = executor
    self.max_filter_bytes = max_filter_bytes

  async def predict(self, servable, signature, arrays: Dict[str, np.ndarray],
                    output_filter=()) -> Dict[str, np.ndarray]:
    """Validates and runs one request on an acquired servable."""
    rows = tensors.check_inputs(signature, arrays)
    for name, arr in arrays.items():
      if arr.dtype == object:
        for x in arr.reshape(-1):
          if len(x) > self.max_filter_bytes:
            raise invalid(f"input '{name}': a string of {len(x)} bytes "
                          f"exceeds the limit of {self.max_filter_bytes}")
    unknown = [n for n in output_filter if n not in signature.outputs]
    if unknown:
      raise invalid(f"output tensor alias not found in signature: "
                    f"{unknown[0]} Outputs expected to be in the set "
                    f"{{{','.join(signature.outputs)}}}.")
    out = await self.executor.run(servable, signature, arrays, rows)
    if output_filter:
      out = {n: out[n] for n in output_filter}
    return out

  def status(self, name: str, version: Optional[int] = None):
    """GetModelStatusResponse as a dict (proto JSON field names)."""
    return {"model_version_status": [
        {"version": str(v), "state": state,
         "status": {"error_code": code, "error_message": msg}}
        for v, state, code, msg in self.manager.status(name, version)]}

  def signature_def_map(self, servable):
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    for key, sdef in sorted(servable.signature_defs.items()):
      sig_map.signature_def[key].CopyFrom(sdef)
    return sig_map

  def metadata_json(self, servable):
    sig_map = self.signature_def_map(servable)
    return {
        "model_spec": {"name": servable.name, "signature_name": "",
                       "version": str(servable.version)},
        "metadata": {"signature_def": json_format.MessageToDict(
            sig_map, preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True)},
    }


def parse_version(text: Optional[str]) -> Optional[int]:
  if text is None:
    return None
  try:
    v = int(text)
  except ValueError:
    raise invalid(f"Failed to convert version: {text} to numeric.") from None
  if v < 0 or v >= 1 << 63:
    raise invalid(f"Failed to convert version: {text} to numeric.")
  return v


def unexpected(e: Exception) -> ServingError:
  log.exception("unexpected error")
  return ServingError("INTERNAL", f"{type(e).__name__}: {str(e)[:500]}")
