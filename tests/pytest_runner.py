"""Bazel py_test entry point: runs one pytest file and exits with its status.

Usage (set up by tests/defs.bzl): pytest_runner.py <test file> [pytest args].
The repo root (the runfiles root under Bazel) goes first on sys.path so tests
import `linr_tf...`; JUnit XML goes where Bazel asks for it.
"""

import os
import sys


def main() -> int:
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  sys.path.insert(0, repo_root)
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import pytest  # pylint: disable=g-import-not-at-top

  if len(sys.argv) < 2:
    print("usage: pytest_runner.py <test file> [pytest args]", file=sys.stderr)
    return 2
  test_file = os.path.abspath(sys.argv[1])
  args = [test_file, "-p", "no:cacheprovider", "-q", "-rfE",
          "--rootdir", repo_root] + sys.argv[2:]
  xml_output = os.environ.get("XML_OUTPUT_FILE")
  if xml_output:
    args.append("--junitxml=" + xml_output)
  # Keep stray files (e.g. hypothesis' database) out of the runfiles tree.
  if os.environ.get("TEST_TMPDIR"):
    os.chdir(os.environ["TEST_TMPDIR"])
  return int(pytest.main(args))


if __name__ == "__main__":
  sys.exit(main())
