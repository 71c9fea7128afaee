"""linr_tf.errors: the one-line messages of the command line and the server."""

import tensorflow as tf

from linr_tf import errors

OP_MESSAGE = ("Graph execution error:\n\nDetected at node 'assert' defined at "
              "(most recent call last):\n<stack traces unavailable>\n"
              "assertion failed: [k must be > 0] [Condition x > 0 did not hold]"
              " [[{{node assert}}]]\n"
              "second line [[{{node y}}]]\n")


def test_op_error_lines_and_line():
  assert errors.op_error_lines(OP_MESSAGE) == [
      "assertion failed: [k must be > 0] [Condition x > 0 did not hold]",
      "second line"]
  assert errors.op_error_line(OP_MESSAGE) == "k must be > 0"
  assert errors.op_error_line("Graph execution error:\n\nbad filter\nmore"
                              ) == "bad filter"
  assert errors.op_error_line("Detected at node x\n") == "Detected at node x"
  assert errors.op_error_line("") == "TensorFlow error"


def test_error_line():
  e = tf.errors.InvalidArgumentError(None, None, OP_MESSAGE)
  assert errors.error_line(e) == "k must be > 0"
  traced = ValueError('in user code:\n\n    File "f.py", line 3, in f  *\n'
                      "        raise ValueError(...)\n\n"
                      "    ValueError: k must be <= 4096\n")
  assert errors.error_line(traced) == "k must be <= 4096"
  assert errors.error_line(OSError("cannot read a\nbecause b")) == (
      "cannot read a; because b")
  assert errors.error_line(ValueError()) == "ValueError"
  assert isinstance(errors.UsageError("x"), ValueError)


def test_serving_uses_the_same_lines():
  from serving import errors as serving_errors  # pylint: disable=g-import-not-at-top
  assert serving_errors.op_error_message(OP_MESSAGE) == "; ".join(
      errors.op_error_lines(OP_MESSAGE))
  assert serving_errors.op_error_message("[[x]]") == "TensorFlow error"
  e = serving_errors.from_op_error(
      tf.errors.InvalidArgumentError(None, None, OP_MESSAGE))
  assert e.code == "INVALID_ARGUMENT" and "k must be > 0" in e.message
