"""Version discovery: every numeric directory with a SavedModel is a version,
0 included (as in TF Serving)."""

import os

from linr_tf import training
from serving import manager as manager_lib
from serving_util import ServerProcess, rest


def test_list_versions_includes_zero(tmp_path):
  for name in ("0", "2", "10", "x", "-1", "3"):
    os.makedirs(tmp_path / name)
    if name != "3":                                  # 3: no saved_model.pb
      (tmp_path / name / "saved_model.pb").write_bytes(b"")
  assert manager_lib.list_versions(str(tmp_path)) == [0, 2, 10]


def test_only_version_zero_is_served_over_rest(feed, tmp_path):
  cfg, _, _, data_dir = feed
  base = str(tmp_path / "linr")
  path = training.export_untrained(cfg, data_dir, base, version=0)
  assert os.path.basename(path) == "0"
  server = ServerProcess([f"--model_base_path={base}", "--model_name=linr",
                          "--file_system_poll_wait_seconds=0"])
  try:
    status, out = rest(server.rest_port, "GET", "/v1/models/linr")
    assert status == 200, out
    assert [(s["version"], s["state"]) for s in out["model_version_status"]
            ] == [("0", "AVAILABLE")]
    body = {"instances": [{"user_id": "u1", "filter": 'lang = "en"', "k": 3}]}
    for url in ("/v1/models/linr:predict",
                "/v1/models/linr/versions/0:predict"):
      status, out = rest(server.rest_port, "POST", url, body)
      assert status == 200, (url, out)
      assert len(out["predictions"][0]["item_ids"]) == 3
  finally:
    server.stop()
