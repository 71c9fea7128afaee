"""The command line: the demo end to end, and one-line errors."""

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=600, cwd=REPO, code=None):
  """`python -m linr_tf ARGS`, or `python -c CODE ARGS` when code is given."""
  env = dict(os.environ, PYTHONPATH=REPO)
  cmd = ["-m", "linr_tf"] if code is None else ["-c", code]
  return subprocess.run([sys.executable, *cmd, *args],
                        capture_output=True, text=True, env=env,
                        timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("demo"))
  res = _cli("demo", f"--workdir={workdir}", "--num_users=300",
             "--num_items=800", "--epochs=1", "--verbose=0", "--k=5")
  assert res.returncode == 0, res.stderr[-3000:]
  return workdir, res.stdout


def test_demo_prints_filtered_results(demo):
  _, out = demo
  assert "held-out recall@10=" in out
  assert 'filter: lang = "en" AND type IN ("post", "article")' in out
  block = out.split('filter: lang = "en" AND type IN ("post", "article")')[1]
  block = block.split("filter:")[0]
  lines = [l for l in block.splitlines() if re.match(r"\s+\d+\. ", l)]
  assert len(lines) == 5
  for line in lines:
    assert "lang=en" in line and ("type=post" in line or "type=article" in line)


def test_query_command_and_errors(demo):
  workdir, _ = demo
  model = os.path.join(workdir, "export", "1")
  res = _cli("query", f"--model={model}", "--query=user_id=u3",
             "--filter=lang = \"de\"", "--k=3")
  assert res.returncode == 0, res.stderr
  assert "3 result(s)" in res.stdout
  cases = [
      (["--query=usr=u3"], "error: unknown query feature 'usr'"),
      (["--query=user_id=u3", "--filter=lang = "], "error: filter[0]"),
      (["--query=user_id=u3", "--k=0"], "error: "),
      ([], "error: missing query feature(s) ['user_id']"),
  ]
  for extra, msg in cases:
    res = _cli("query", f"--model={model}", *extra)
    assert res.returncode == 1, (extra, res.stdout, res.stderr)
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(msg), (extra, last)
  res = _cli("query", "--model=/nonexistent/1", "--query=user_id=u1")
  assert res.returncode == 1 and "error:" in res.stderr


def test_train_and_export_commands(demo, tmp_path):
  workdir, _ = demo
  data_dir = os.path.join(workdir, "data")
  run = str(tmp_path / "run")
  res = _cli("train", f"--data_dir={data_dir}", f"--workdir={run}",
             "--epochs=1", "--verbose=0")
  assert res.returncode == 0, res.stderr[-2000:]
  assert "held-out recall@10=" in res.stdout
  assert os.listdir(os.path.join(run, "logs"))          # TensorBoard events
  res = _cli("export", f"--workdir={run}")
  assert res.returncode == 0, res.stderr[-2000:]
  assert os.path.isfile(os.path.join(run, "export", "1", "saved_model.pb"))
  res = _cli("train", "--data_dir=/nonexistent", f"--workdir={run}")
  assert res.returncode == 1 and res.stderr.strip().splitlines()[-1].startswith(
      "error: cannot read /nonexistent/items.csv")


def test_demo_writes_to_the_given_workdir_even_out_run(tmp_path):
  # --workdir=out/run (the train default) used to be replaced by out/demo.
  res = _cli("demo", "--workdir=out/run", "--num_users=200", "--num_items=400",
             "--epochs=1", "--verbose=0", "--k=3", cwd=str(tmp_path))
  assert res.returncode == 0, res.stderr[-3000:]
  assert os.path.isfile(tmp_path / "out" / "run" / "export" / "1" /
                        "saved_model.pb")
  assert os.path.isfile(tmp_path / "out" / "run" / "model.json")
  assert not os.path.exists(tmp_path / "out" / "demo")


def test_demo_and_train_default_workdirs(monkeypatch):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from linr_tf import cli  # pylint: disable=g-import-not-at-top
  calls = []
  monkeypatch.setattr(cli.demo_lib, "run", lambda **kw: calls.append(kw))
  monkeypatch.setattr(cli.training, "restore", calls.append)
  monkeypatch.setattr(cli.export_lib, "export", lambda model, path: path)
  flags.FLAGS(["linr_tf"])
  try:
    cli.cmd_demo()
    cli.cmd_export()
    flags.FLAGS(["linr_tf", "--workdir=elsewhere"])
    cli.cmd_demo()
  finally:
    flags.FLAGS.unparse_flags()
  assert calls[0]["workdir"] == "out/demo"
  assert calls[1] == "out/run"
  assert calls[2]["workdir"] == "elsewhere"


# Each raised by `export_portable` in place of a real export failure: the
# command line must print one `error:` line, no traceback, and exit 1.
_EXPORT_FAILURES = [
    ("NotImplementedError('the portable export needs float vectors')",
     "the portable export needs float vectors"),
    ("ValueError('in user code:\\n\\n    File \"x.py\", line 3, in f  *\\n"
     "        raise ValueError(...)\\n\\n    ValueError: k must be <= 4096\\n')",
     "k must be <= 4096"),
    ("tf.errors.InvalidArgumentError(None, None, 'Graph execution error:\\n\\n"
     "Detected at node x\\nfilter[0]: unknown attribute [[{{node y}}]]')",
     "filter[0]: unknown attribute"),
]


@pytest.mark.parametrize("raised,line", _EXPORT_FAILURES,
                         ids=["not_implemented", "traced_value_error",
                              "invalid_argument"])
def test_export_portable_failure_is_one_line(demo, raised, line):
  workdir, _ = demo
  code = ("import sys, linr_tf, tensorflow as tf\n"
          "from linr_tf import cli, export_portable\n"
          "def fail(*args, **kwargs):\n"
          f"  raise {raised}\n"
          "export_portable.export_portable = fail\n"
          "sys.argv[0] = 'linr_tf'\n"
          "cli.run()\n")
  res = _cli("export", f"--workdir={workdir}", "--portable", code=code)
  assert res.returncode == 1, (res.stdout, res.stderr[-3000:])
  assert "Traceback" not in res.stderr, res.stderr[-3000:]
  assert res.stderr.strip().splitlines()[-1] == f"error: {line}"


def test_serve_runs_the_serving_program(demo):
  res = _cli("serve", "--help", timeout=120)
  assert res.returncode == 0, res.stderr[-2000:]
  assert "usage: python -m serving" in res.stdout
  workdir, _ = demo
  env = dict(os.environ, PYTHONPATH=REPO)
  proc = subprocess.Popen(
      [sys.executable, "-m", "linr_tf", "serve",
       f"--model_base_path={os.path.join(workdir, 'export')}",
       "--rest_port=-1", "--grpc_port=0"], stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
  try:
    lines = []
    for line in proc.stdout:
      lines.append(line)
      if line.startswith("LINR_SERVING_READY"):
        break
    assert lines and lines[-1].startswith("LINR_SERVING_READY"), lines[-20:]
    port = int(dict(p.split("=") for p in lines[-1].split()[1:])["rest"])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/linr",
                                timeout=60) as resp:   # default name: linr
      status = json.loads(resp.read())["model_version_status"]
    assert status[0]["state"] == "AVAILABLE", status
  finally:
    proc.terminate()
    proc.wait(30)


def test_usage_and_linr_tf_does_not_load_serving():
  res = _cli("nope")
  assert res.returncode == 2 and "python -m serving" in res.stderr
  res = _cli(code="import sys, linr_tf.cli, linr_tf.demo, linr_tf.training; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == "
             "'serving'))")
  assert res.returncode == 0 and res.stdout.strip() == "[]", res.stderr[-2000:]
