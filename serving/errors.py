"""Errors with TF Serving's status codes, and their HTTP / gRPC forms."""

import grpc

from linr_tf.errors import op_error_lines

# Canonical status code -> (HTTP status, gRPC code), as TF Serving maps them
# (model_servers/http_server.cc ToHTTPStatusCode).
_CODES = {
    "CANCELLED": (499, grpc.StatusCode.CANCELLED),
    "UNKNOWN": (500, grpc.StatusCode.UNKNOWN),
    "INVALID_ARGUMENT": (400, grpc.StatusCode.INVALID_ARGUMENT),
    "DEADLINE_EXCEEDED": (504, grpc.StatusCode.DEADLINE_EXCEEDED),
    "NOT_FOUND": (404, grpc.StatusCode.NOT_FOUND),
    "ALREADY_EXISTS": (409, grpc.StatusCode.ALREADY_EXISTS),
    "PERMISSION_DENIED": (403, grpc.StatusCode.PERMISSION_DENIED),
    "RESOURCE_EXHAUSTED": (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
    "FAILED_PRECONDITION": (400, grpc.StatusCode.FAILED_PRECONDITION),
    "ABORTED": (409, grpc.StatusCode.ABORTED),
    "OUT_OF_RANGE": (400, grpc.StatusCode.OUT_OF_RANGE),
    "UNIMPLEMENTED": (501, grpc.StatusCode.UNIMPLEMENTED),
    "INTERNAL": (500, grpc.StatusCode.INTERNAL),
    "UNAVAILABLE": (503, grpc.StatusCode.UNAVAILABLE),
    "DATA_LOSS": (500, grpc.StatusCode.DATA_LOSS),
    "UNAUTHENTICATED": (401, grpc.StatusCode.UNAUTHENTICATED),
}

# tf.errors.OpError subclasses carry `error_code`, an int of this enum.
_TF_CODE_NAMES = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
    11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
    15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}


class ServingError(Exception):
  """A request failure with a canonical status code name."""

  def __init__(self, code: str, message: str):
    super().__init__(message)
    if code not in _CODES:
      code = "UNKNOWN"
    self.code = code
    self.message = message

  @property
  def http_status(self) -> int:
    return _CODES[self.code][0]

  @property
  def grpc_code(self) -> grpc.StatusCode:
    return _CODES[self.code][1]

  def __repr__(self):
    return f"ServingError({self.code}, {self.message!r})"


def invalid(message: str) -> ServingError:
  return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
  return ServingError("NOT_FOUND", message)


def op_error_message(message: str) -> str:
  """The informative part of a TensorFlow runtime error message (all lines)."""
  return "; ".join(op_error_lines(message))[:2000] or "TensorFlow error"


def from_op_error(e) -> ServingError:
  """A tf.errors.OpError as a ServingError with the same code."""
  return ServingError(_TF_CODE_NAMES.get(getattr(e, "error_code", 2), "UNKNOWN"),
                      op_error_message(getattr(e, "message", str(e))))
