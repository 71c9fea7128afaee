"""Model manager: TF Serving's base-path layout, version policy, hot reload.

Each configured model has a base path holding numeric version directories
(`<base>/1`, `<base>/2`, ...). A poller lists the base paths every
`poll_seconds`, loads the versions the policy wants (latest N, all, or a
specific list) and retires the others. A version is retired in two steps: it
is removed from routing as soon as a newer wanted version is AVAILABLE (new
requests no longer see it), and unloaded only when the requests holding it
have finished (a reference count), so a swap drops no in-flight request.

    manager = ModelManager(config, poll_seconds=1.0)
    manager.start()
    with manager.acquire("linr") as servable:       # latest available version
      fn = servable.signature("serving_default")
"""

import contextlib
import logging
import os
import re
import threading
import time
from typing import Dict, List, Optional

from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from serving import config as config_lib
from serving.errors import ServingError, invalid, not_found

log = logging.getLogger("serving")

# States, as in TF Serving's ModelVersionStatus.State.
START, LOADING, AVAILABLE, UNLOADING, END = (
    "START", "LOADING", "AVAILABLE", "UNLOADING", "END")
MAX_LOAD_ATTEMPTS = 5


class Signature:
  """One signature: the callable and what it accepts."""

  def __init__(self, name: str, fn, signature_def):
    self.name = name
    self.fn = fn
    self.signature_def = signature_def
    # Input specs from the concrete function (dtype + static shape).
    specs = fn.structured_input_signature[1]
    self.inputs = {k: specs[k] for k in sorted(specs)}
    self.outputs = sorted(signature_def.outputs) or sorted(fn.structured_outputs)

  def batched_inputs(self):
    """Inputs of rank >= 1 with an unknown leading (batch) dimension."""
    return [k for k, s in self.inputs.items()
            if s.shape.rank and s.shape[0] is None]


class Servable:
  """One loaded version of a model, reference counted."""

  def __init__(self, name: str, version: int, path: str):
    self.name = name
    self.version = version
    self.path = path
    self.state = START
    self.error = ""
    self.loaded = None
    self.signatures: Dict[str, Signature] = {}
    self.signature_defs = {}
    self._refs = 0
    self._cond = threading.Condition()

  def load(self, loader) -> None:
    self.state = LOADING
    self.loaded = loader(self.path)
    defs = read_signature_defs(self.path)
    self.signature_defs = defs
    for key, fn in self.loaded.signatures.items():
      if key in defs:
        self.signatures[key] = Signature(key, fn, defs[key])
    self.state = AVAILABLE

  def signature(self, name: str) -> Signature:
    key = name or "serving_default"
    sig = self.signatures.get(key)
    if sig is None:
      raise invalid(f'Serving signature name: "{key}" not found in '
                    "signature def")
    return sig

  def ref(self):
    with self._cond:
      self._refs += 1

  def unref(self):
    with self._cond:
      self._refs -= 1
      if self._refs <= 0:
        self._cond.notify_all()

  @property
  def refs(self) -> int:
    return self._refs

  def wait_idle(self, timeout: Optional[float] = None) -> bool:
    with self._cond:
      return self._cond.wait_for(lambda: self._refs <= 0, timeout)

  def unload(self):
    self.state = UNLOADING
    self.wait_idle()
    self.loaded = None
    self.signatures = {}
    self.state = END


def read_signature_defs(path: str):
  """SignatureDefs as written in saved_model.pb (TF Serving reports these)."""
  sm = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    sm.ParseFromString(f.read())
  for mg in sm.meta_graphs:
    if "serve" in mg.meta_info_def.tags:
      return dict(mg.signature_def)
  return dict(sm.meta_graphs[0].signature_def) if sm.meta_graphs else {}


def list_versions(base_path: str) -> List[int]:
  """Numeric version directories that hold a complete SavedModel."""
  try:
    names = os.listdir(base_path)
  except OSError:
    return []
  out = []
  for d in names:
    if re.fullmatch(r"\d{1,18}", d):   # 0 is a version too (as in TF Serving)
      full = os.path.join(base_path, d)
      if os.path.isfile(os.path.join(full, "saved_model.pb")):
        out.append(int(d))
  return sorted(out)


def default_loader(path: str):
  """Loads a SavedModel with the LiNR op library registered when available."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    from linr_tf import ops  # pylint: disable=g-import-not-at-top
    ops.load_library()
  except (ImportError, FileNotFoundError) as e:  # portable models still load
    log.warning("LiNR op library not loaded (%s); only portable models load", e)
  return tf.saved_model.load(path)


class _Model:

  def __init__(self, cfg):
    self.cfg = cfg
    self.name = cfg.name
    self.routable: Dict[int, Servable] = {}      # versions requests may use
    self.history: Dict[int, Servable] = {}       # every version seen (status)
    self.failures: Dict[int, int] = {}


class ModelManager:
  """Loads and routes the models of a ModelServerConfig."""

  def __init__(self, server_config, poll_seconds: float = 1.0, loader=None):
    self._lock = threading.RLock()
    self._models: Dict[str, _Model] = {}
    for cfg in server_config.model_config_list.config:
      config_lib.version_policy(cfg)  # validates
      self._models[cfg.name] = _Model(cfg)
    self.poll_seconds = poll_seconds
    self._loader = loader or default_loader
    self._stop = threading.Event()
    self._thread = None
    self._retiring: List[threading.Thread] = []

  # ---- lifecycle -----------------------------------------------------------

  def start(self, wait_for_models: bool = True, timeout: float = 600) -> None:
    """Loads what is on disk now, then polls in a background thread."""
    self.poll_once()
    if wait_for_models:
      deadline = time.time() + timeout
      while any(not m.routable and self._pending(m)
                for m in self._models.values()):
        if time.time() > deadline:
          break
        time.sleep(min(self.poll_seconds, 0.5))
        self.poll_once()
    if self.poll_seconds > 0:
      self._thread = threading.Thread(target=self._poll_loop, daemon=True,
                                      name="model-poller")
      self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread:
      self._thread.join(timeout=30)

  def _poll_loop(self):
    while not self._stop.wait(self.poll_seconds):
      try:
        self.poll_once()
      except Exception:  # pylint: disable=broad-except
        log.exception("model poll failed")

  def poll_once(self) -> None:
    for model in list(self._models.values()):
      self._sync(model)

  def _pending(self, model: _Model) -> List[int]:
    """Wanted versions not serving yet that may still load."""
    on_disk = list_versions(model.cfg.base_path)
    return [v for v in config_lib.wanted_versions(model.cfg, on_disk)
            if v not in model.routable
            and model.failures.get(v, 0) < MAX_LOAD_ATTEMPTS]

  def _sync(self, model: _Model) -> None:
    on_disk = list_versions(model.cfg.base_path)
    wanted = config_lib.wanted_versions(model.cfg, on_disk)
    for v in sorted(wanted, reverse=True):   # newest first
      if v in model.routable:
        continue
      if model.failures.get(v, 0) >= MAX_LOAD_ATTEMPTS:
        continue
      servable = Servable(model.name, v,
                          os.path.join(model.cfg.base_path, str(v)))
      model.history[v] = servable
      try:
        servable.load(self._loader)
      except Exception as e:  # pylint: disable=broad-except
        model.failures[v] = model.failures.get(v, 0) + 1
        servable.state = END
        servable.error = f"{type(e).__name__}: {e}"[:2000]
        log.warning("loading %s version %d failed (attempt %d): %s",
                    model.name, v, model.failures[v], servable.error)
        continue
      with self._lock:
        model.routable[v] = servable
      log.info("serving %s version %d", model.name, v)
    # Retire versions no longer wanted, but only once a wanted one serves
    # (never leave a model with nothing to serve because of a failed load).
    with self._lock:
      if not any(v in model.routable for v in wanted):
        return
      stale = [v for v in model.routable if v not in wanted]
      retired = [model.routable.pop(v) for v in stale]
    for servable in retired:
      log.info("retiring %s version %d (%d in flight)", model.name,
               servable.version, servable.refs)
      t = threading.Thread(target=servable.unload, daemon=True)
      t.start()
      self._retiring.append(t)
    self._retiring = [t for t in self._retiring if t.is_alive()]

  # ---- routing -------------------------------------------------------------

  def model_names(self) -> List[str]:
    return sorted(self._models)

  def _model(self, name: str) -> _Model:
    model = self._models.get(name)
    if model is None:
      raise not_found(f"Servable not found for request: Latest({name})")
    return model

  def resolve(self, name: str, version: Optional[int] = None,
              label: Optional[str] = None) -> Servable:
    """The servable a request names; takes a reference (call `unref`)."""
    model = self._model(name)
    with self._lock:
      if label is not None:
        labels = config_lib.labels(model.cfg)
        if label not in labels:
          raise invalid(f"Unrecognized servable version label: {label}")
        version = labels[label]
      if version is not None:
        servable = model.routable.get(version)
        if servable is None:
          raise not_found(f"Servable not found for request: "
                          f"Specific({name}, {version})")
      else:
        if not model.routable:
          raise not_found(f"Servable not found for request: Latest({name})")
        servable = model.routable[max(model.routable)]
      servable.ref()
      return servable

  @contextlib.contextmanager
  def acquire(self, name: str, version: Optional[int] = None,
              label: Optional[str] = None):
    servable = self.resolve(name, version, label)
    try:
      yield servable
    finally:
      servable.unref()

  def status(self, name: str, version: Optional[int] = None):
    """[(version, state, error_code, error_message)] newest first."""
    model = self._model(name)
    with self._lock:
      entries = sorted(model.history.items(), reverse=True)
    if version is not None:
      entries = [(v, s) for v, s in entries if v == version]
      if not entries:
        raise not_found(f"Could not find version {version} of model {name}")
    if not entries:
      raise not_found(f"Could not find any versions of model {name}")
    out = []
    for v, s in entries:
      code = "OK" if not s.error else "UNKNOWN"
      out.append((v, s.state, code, s.error))
    return out

  def versions(self, name: str) -> List[int]:
    with self._lock:
      return sorted(self._model(name).routable)
