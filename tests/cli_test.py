"""The command line: the demo end to end, and one-line errors."""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=600):
  env = dict(os.environ, PYTHONPATH=REPO)
  return subprocess.run([sys.executable, "-m", "linr_tf", *args],
                        capture_output=True, text=True, env=env,
                        timeout=timeout, cwd=REPO)


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
