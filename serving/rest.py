"""TF Serving's REST API on aiohttp.

    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            (status)
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata

Paths match case-insensitively as in TF Serving; every error is
`{"error": "<message>"}` with TF Serving's HTTP status for its code.
"""

import json
import logging
import re

from aiohttp import web

from serving import tensors
from serving.errors import ServingError, invalid, not_found
from serving.service import PredictService, parse_version, unexpected

log = logging.getLogger("serving")

_PREDICT = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?"
    r":(classify|regress|predict)", re.IGNORECASE)
_STATUS = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?"
    r"(?:/(metadata))?", re.IGNORECASE)


def _json_response(obj, status=200):
  text = json.dumps(obj, allow_nan=True, ensure_ascii=False,
                    separators=(",", ":"))
  return web.Response(text=text, status=status,
                      content_type="application/json")


def _error(e: ServingError):
  return _json_response({"error": e.message}, e.http_status)


class RestApi:

  def __init__(self, service: PredictService, max_request_bytes: int):
    self.service = service
    self.max_request_bytes = max_request_bytes

  def app(self) -> web.Application:
    app = web.Application(client_max_size=self.max_request_bytes,
                          handler_args={"max_field_size": 16384})
    app.router.add_route("*", "/{tail:.*}", self.handle)
    return app

  async def handle(self, request: web.Request) -> web.Response:
    try:
      return await self._dispatch(request)
    except ServingError as e:
      return _error(e)
    except web.HTTPRequestEntityTooLarge:
      return _json_response(
          {"error": f"Request body exceeds the limit of "
                    f"{self.max_request_bytes} bytes"}, 413)
    except web.HTTPException as e:
      return _json_response({"error": e.reason or "bad request"}, e.status)
    except Exception as e:  # pylint: disable=broad-except
      return _error(unexpected(e))

  async def _dispatch(self, request: web.Request) -> web.Response:
    path = request.path
    method = request.method
    if not path.lower().startswith("/v1/"):
      raise not_found(f"Not found: {method} {path}")
    match = _PREDICT.fullmatch(path)
    if method == "POST" and match:
      name, version, label, verb = match.groups()
      if verb.lower() != "predict":
        raise ServingError("UNIMPLEMENTED", f"{verb} is not supported by "
                           "this model server (use :predict)")
      body = await request.read()
      return await self._predict(name, parse_version(version), label, body)
    match = _STATUS.fullmatch(path)
    if method == "GET" and match:
      name, version, label, metadata = match.groups()
      if not name:
        raise invalid("Missing model name in request.")
      if metadata:
        with self.service.manager.acquire(name, parse_version(version),
                                          label) as servable:
          return _json_response(self.service.metadata_json(servable))
      if label is not None:
        with self.service.manager.acquire(name, None, label) as servable:
          version = str(servable.version)
      return _json_response(self.service.status(name, parse_version(version)))
    raise invalid(f"Malformed request: {method} {path}")

  async def _predict(self, name, version, label, body: bytes):
    try:
      doc = json.loads(body)
    except RecursionError:
      raise invalid("JSON Parse error: nesting too deep") from None
    except UnicodeDecodeError:
      raise invalid("JSON Parse error: The document is not valid UTF-8") \
          from None
    except ValueError as e:
      raise invalid(f"JSON Parse error: {e}") from None
    if not isinstance(doc, dict):
      raise invalid("JSON Value: the request body must be a JSON object")
    signature_name = doc.get("signature_name", "")
    if not isinstance(signature_name, str):
      raise invalid("'signature_name' key must be a string")
    has_rows, has_cols = "instances" in doc, "inputs" in doc
    if has_rows and has_cols:
      raise invalid("Not allowed to specify both 'instances' and 'inputs' "
                    "keys")
    if not has_rows and not has_cols:
      raise invalid("Missing 'inputs' or 'instances' key")
    with self.service.manager.acquire(name, version, label) as servable:
      signature = servable.signature(signature_name)
      if has_rows:
        arrays = tensors.parse_instances(signature, doc["instances"])
      else:
        arrays = tensors.parse_columns(signature, doc["inputs"])
      out = await self.service.predict(servable, signature, arrays)
    return _json_response(tensors.outputs_to_json(out, row_format=has_rows))
