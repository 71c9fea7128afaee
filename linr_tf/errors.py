"""Short error messages: usage errors and TensorFlow runtime errors.

A TensorFlow runtime error message carries graph-execution noise (node names,
stack traces, `[[...]]` blocks) around the line that says what went wrong.
The command line prints that one line, the model server all of them:

    from linr_tf import errors
    msg = ("Graph execution error:\\n\\nDetected at node x\\n"
           "assertion failed: [k must be > 0] [Condition x > 0 did not hold]")
    errors.op_error_line(msg)     # 'k must be > 0'
    errors.op_error_lines(msg)    # ['assertion failed: [k must be > 0] [...]']
"""

import re
from typing import List

_NOISE = ("Graph execution error", "Detected at node", "<stack traces", "[[",
          "Traceback", "Detected unsupported operations")


class UsageError(ValueError):
  """A bad argument or missing input; the command line prints it as one line."""


def op_error_lines(message: str) -> List[str]:
  """The informative lines of a TensorFlow runtime error message, in order."""
  lines = []
  for line in message.splitlines():
    line = line.strip()
    if line and not line.startswith(_NOISE):
      lines.append(line.split(" [[")[0].strip())
  return lines


def op_error_line(message: str) -> str:
  """The first informative line; `assertion failed: [text] ...` gives text."""
  lines = op_error_lines(message)
  if not lines:
    return message.strip() or "TensorFlow error"
  match = re.match(r"assertion failed: \[(.*?)\]", lines[0])
  return match.group(1) if match else lines[0]


def error_line(e: BaseException) -> str:
  """One line for an exception: what `error: ...` on the command line says.

  A tf.errors.OpError gives its `op_error_line`; an error raised while a
  tf.function traced (`in user code: File ... ValueError: text`) gives text;
  anything else its message with the lines joined by "; ".
  """
  message = getattr(e, "message", None)
  if isinstance(message, str) and hasattr(e, "error_code"):  # tf.errors.OpError
    return op_error_line(message)
  lines = [l.strip() for l in str(e).splitlines() if l.strip()]
  if not lines:
    return type(e).__name__
  if lines[0] == "in user code:":
    return re.sub(r"^[A-Za-z_][\w.]*(Error|Exception): ", "", lines[-1])
  return "; ".join(lines)
