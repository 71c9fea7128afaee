"""The model server: REST (aiohttp) and gRPC (grpc.aio) on one event loop.

    python -m serving --model_name=linr --model_base_path=out/demo/export \
        --rest_port=8501 --grpc_port=8500 [--enable_batching \
        --batching_parameters_file=configs/batching.config]
    python -m serving --model_config_file=configs/models.config ...

Binds 127.0.0.1 unless --address says otherwise. A port of -1 picks a free
one, 0 disables that API; the bound ports are printed as one line
`LINR_SERVING_READY rest=<port> grpc=<port>` once the models are loaded.

With `--ingest_source local:<dir>|redis://127.0.0.1:<port>/<stream>` and
`--ingest_snapshot_dir`, the server restores the served index from its newest
snapshot and applies the change stream to it in process (linr_tf.ingest):
published items become searchable without a restart or a new version.
"""

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
import threading
from typing import Optional

import grpc
from aiohttp import web

from serving import config as config_lib
from serving import grpc_service
from serving.batching import Executor
from serving.manager import ModelManager
from serving.rest import RestApi
from serving.service import PredictService

log = logging.getLogger("serving")

DEFAULT_MAX_REQUEST_BYTES = 16 << 20


@dataclasses.dataclass(frozen=True)
class IngestOptions:
  """A change stream applied to one served model's index (see linr_tf.ingest)."""
  source: str                 # local:<dir> or redis://127.0.0.1:<port>/<stream>
  snapshot_dir: str
  model_name: str
  snapshot_interval_s: float = 60.0


class Server:
  """Owns the manager, the executor and both front ends.

  `start()` runs everything on a background thread (tests, the demo);
  `serve_forever()` runs on the calling thread until SIGINT/SIGTERM.
  """

  def __init__(self, server_config, address: str = "127.0.0.1",
               rest_port: int = -1, grpc_port: int = -1,
               batching: Optional[config_lib.BatchingOptions] = None,
               poll_seconds: float = 1.0, num_threads: int = 2,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
               loader=None, ingest: Optional["IngestOptions"] = None):
    self.address = address
    if ingest is not None and poll_seconds:
      log.warning("--ingest_source: version polling is off (updates are applied "
                  "to the version loaded at start; a new version would drop them)")
      poll_seconds = 0
    self.ingest = ingest
    self._ingestor = None
    self._ingest_thread = None
    self._ingest_stop = threading.Event()
    self.manager = ModelManager(server_config, poll_seconds, loader)
    self.executor = Executor(batching, num_threads)
    self.service = PredictService(self.manager, self.executor)
    self.max_request_bytes = max_request_bytes
    self._want_rest, self._want_grpc = rest_port, grpc_port
    self.rest_port = None
    self.grpc_port = None
    self._loop = None
    self._thread = None
    self._runner = None
    self._grpc = None
    self._stopped = None

  async def _start_async(self):
    if self._want_rest != 0:
      self._runner = web.AppRunner(
          RestApi(self.service, self.max_request_bytes).app(),
          access_log=None, handle_signals=False)
      await self._runner.setup()
      site = web.TCPSite(self._runner, self.address,
                         max(self._want_rest, 0), backlog=1024,
                         reuse_address=True)
      await site.start()
      self.rest_port = site._server.sockets[0].getsockname()[1]  # pylint: disable=protected-access
    if self._want_grpc != 0:
      limit = self.max_request_bytes
      self._grpc = grpc.aio.server(options=[
          ("grpc.max_receive_message_length", limit),
          ("grpc.max_send_message_length", 1 << 30),
          ("grpc.so_reuseport", 0),
      ])
      grpc_service.add_services(self._grpc, self.service)
      host = (f"[{self.address}]" if ":" in self.address else self.address)
      self.grpc_port = self._grpc.add_insecure_port(
          f"{host}:{max(self._want_grpc, 0)}")
      if not self.grpc_port:
        raise OSError(f"cannot bind gRPC to {host}:{self._want_grpc}")
      await self._grpc.start()

  async def _stop_async(self):
    if self._grpc is not None:
      await self._grpc.stop(grace=2)
    if self._runner is not None:
      await self._runner.cleanup()

  def _start_ingest(self) -> None:
    """Recovers the served index from its newest snapshot, then applies the
    change stream to it on a background thread (queries see each change as
    soon as it is applied)."""
    if self.ingest is None:
      return
    from linr_tf.index.live_index import LiveIndex  # pylint: disable=g-import-not-at-top
    from linr_tf.ingest.ingestor import Ingestor  # pylint: disable=g-import-not-at-top
    from linr_tf.ingest import open_source  # pylint: disable=g-import-not-at-top
    servable = self.manager.resolve(self.ingest.model_name)   # held until stop
    self._ingest_servable = servable
    live = LiveIndex(servable.loaded)
    self._ingestor = Ingestor(live, open_source(self.ingest.source),
                              self.ingest.snapshot_dir,
                              snapshot_interval_s=self.ingest.snapshot_interval_s)
    self._ingestor.recover()
    self._ingest_thread = threading.Thread(
        target=self._ingestor.run, args=(self._ingest_stop,), name="ingest", daemon=True)
    self._ingest_thread.start()
    log.info("ingesting %s into model %s version %d", self.ingest.source,
             self.ingest.model_name, servable.version)

  def _stop_ingest(self) -> None:
    if self._ingest_thread is not None:
      self._ingest_stop.set()
      self._ingest_thread.join(timeout=60)
      self._ingestor.close()
      self._ingest_thread = None
      self._ingest_servable.unref()

  def ingest_metrics(self):
    """Counters and freshness of the in-process ingestor (None without one)."""
    return None if self._ingestor is None else self._ingestor.metrics()

  def ready_line(self) -> str:
    return (f"LINR_SERVING_READY rest={self.rest_port or 0} "
            f"grpc={self.grpc_port or 0}")

  def start(self, timeout: float = 600) -> "Server":
    """Loads the models, then serves on a background thread."""
    self.manager.start(timeout=timeout)
    self._start_ingest()
    started = threading.Event()
    failure = []

    def run():
      self._loop = asyncio.new_event_loop()
      asyncio.set_event_loop(self._loop)
      self._stopped = asyncio.Event()
      try:
        self._loop.run_until_complete(self._start_async())
      except Exception as e:  # pylint: disable=broad-except
        failure.append(e)
        started.set()
        return
      started.set()
      self._loop.run_until_complete(self._stopped.wait())
      self._loop.run_until_complete(self._stop_async())
      self._loop.close()

    self._thread = threading.Thread(target=run, name="serving-loop",
                                    daemon=True)
    self._thread.start()
    started.wait()
    if failure:
      raise failure[0]
    return self

  def stop(self) -> None:
    if self._loop is not None and self._stopped is not None:
      self._loop.call_soon_threadsafe(self._stopped.set)
    if self._thread is not None:
      self._thread.join(timeout=30)
    self._stop_ingest()
    self.manager.stop()
    self.executor.shutdown()

  def serve_forever(self) -> None:
    self.manager.start()
    self._start_ingest()

    async def main():
      self._stopped = asyncio.Event()
      await self._start_async()
      loop = asyncio.get_running_loop()
      for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, self._stopped.set)
      print(self.ready_line(), flush=True)
      await self._stopped.wait()
      await self._stop_async()

    try:
      asyncio.run(main())
    finally:
      self._stop_ingest()
      self.manager.stop()
      self.executor.shutdown()


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="python -m serving",
      description="TF Serving-compatible REST/gRPC server for LiNR "
      "SavedModels (binds 127.0.0.1 by default).")
  p.add_argument("--model_config_file", help="text ModelServerConfig")
  p.add_argument("--model_name", default="default",
                 help="model name (with --model_base_path)")
  p.add_argument("--model_base_path", help="base path with version dirs")
  p.add_argument("--address", default="127.0.0.1",
                 help="address to bind (default 127.0.0.1)")
  p.add_argument("--rest_port", "--rest_api_port", type=int, default=8501,
                 help="REST port (0 disables, -1 picks a free one)")
  p.add_argument("--grpc_port", "--port", type=int, default=8500,
                 help="gRPC port (0 disables, -1 picks a free one)")
  p.add_argument("--enable_batching", action="store_true",
                 help="dynamic request batching")
  p.add_argument("--batching_parameters_file",
                 help="text BatchingParameters (implies --enable_batching)")
  p.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                 help="how often base paths are polled for new versions "
                 "(0 = only at start)")
  p.add_argument("--num_threads", type=int, default=2,
                 help="model call threads without batching")
  p.add_argument("--max_request_bytes", type=int,
                 default=DEFAULT_MAX_REQUEST_BYTES,
                 help="largest accepted REST body / gRPC message")
  p.add_argument("--ingest_source",
                 help="apply a change stream to the served index: local:<dir> "
                 "or redis://127.0.0.1:<port>/<stream> (turns version polling off)")
  p.add_argument("--ingest_snapshot_dir",
                 help="snapshots (+ dead-letter log) of the ingested index; "
                 "required with --ingest_source")
  p.add_argument("--ingest_model_name",
                 help="model whose index ingests (default: --model_name)")
  p.add_argument("--ingest_snapshot_interval_seconds", type=float, default=60.0)
  p.add_argument("--verbose", action="store_true")
  return p


def server_from_args(args) -> Server:
  if args.model_config_file:
    cfg = config_lib.load_model_server_config(args.model_config_file)
  elif args.model_base_path:
    cfg = config_lib.single_model_config(args.model_name,
                                         args.model_base_path)
  else:
    raise config_lib.ConfigError(
        "pass --model_config_file or --model_base_path")
  batching = None
  if args.batching_parameters_file:
    batching = config_lib.load_batching_parameters(
        args.batching_parameters_file)
  elif args.enable_batching:
    batching = config_lib.BatchingOptions()
  ingest = None
  if args.ingest_source:
    if not args.ingest_snapshot_dir:
      raise config_lib.ConfigError("--ingest_source needs --ingest_snapshot_dir")
    ingest = IngestOptions(args.ingest_source, args.ingest_snapshot_dir,
                           args.ingest_model_name or args.model_name,
                           args.ingest_snapshot_interval_seconds)
  return Server(cfg, address=args.address, rest_port=args.rest_port,
                grpc_port=args.grpc_port, batching=batching,
                poll_seconds=args.file_system_poll_wait_seconds,
                num_threads=args.num_threads,
                max_request_bytes=args.max_request_bytes, ingest=ingest)


def main(argv=None) -> int:
  args = build_parser().parse_args(argv)
  logging.basicConfig(
      level=logging.INFO if args.verbose else logging.WARNING,
      format="%(asctime)s %(levelname)s %(name)s: %(message)s")
  try:
    server = server_from_args(args)
  except (config_lib.ConfigError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  try:
    server.serve_forever()
  except OSError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0
