"""TF Serving's configuration files: `models.config` and the batching parameters.

`models.config` is a text-format `tensorflow.serving.ModelServerConfig`, parsed
with the official proto of the `tensorflow-serving-api` package:

    model_config_list {
      config {
        name: "linr"
        base_path: "/models/linr"
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 1 } }
      }
    }

The batching file is a text-format `tensorflow.serving.BatchingParameters`
(`max_batch_size { value: 32 }` ...). That message lives in TF Serving's
`session_bundle_config.proto`, which the pip package does not ship; the same
message (package, name, field names and numbers as in TF Serving) is declared
here at run time so the files read exactly as TF Serving reads them.
"""

import dataclasses
import os
from typing import Dict, List, Optional

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format
from google.protobuf import wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig


def _batching_parameters_class():
  pool = descriptor_pool.DescriptorPool()
  pool.Add(descriptor_pb2.FileDescriptorProto.FromString(
      wrappers_pb2.DESCRIPTOR.serialized_pb))
  f = descriptor_pb2.FileDescriptorProto(
      name="linr_serving/session_bundle_config.proto",
      package="tensorflow.serving", syntax="proto3",
      dependency=["google/protobuf/wrappers.proto"])
  m = f.message_type.add(name="BatchingParameters")
  fd = descriptor_pb2.FieldDescriptorProto
  fields = [  # (name, number, type, label, type_name) as in TF Serving
      ("max_batch_size", 1, fd.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
      ("batch_timeout_micros", 2, fd.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
      ("max_enqueued_batches", 3, fd.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
      ("num_batch_threads", 4, fd.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
      ("thread_pool_name", 5, fd.TYPE_MESSAGE, ".google.protobuf.StringValue"),
      ("allowed_batch_sizes", 6, fd.TYPE_INT64, None),
      ("pad_variable_length_inputs", 7, fd.TYPE_BOOL, None),
      ("enable_large_batch_splitting", 8, fd.TYPE_MESSAGE,
       ".google.protobuf.BoolValue"),
      ("max_execution_batch_size", 9, fd.TYPE_MESSAGE,
       ".google.protobuf.Int64Value"),
  ]
  for name, number, ftype, type_name in fields:
    field = m.field.add(name=name, number=number, type=ftype,
                        label=(fd.LABEL_REPEATED if name == "allowed_batch_sizes"
                               else fd.LABEL_OPTIONAL))
    if type_name:
      field.type_name = type_name
  pool.Add(f)
  return message_factory.GetMessageClass(
      pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


BatchingParameters = _batching_parameters_class()


class ConfigError(ValueError):
  pass


def _read(path: str) -> str:
  try:
    with open(path, encoding="utf-8") as f:
      return f.read()
  except OSError as e:
    raise ConfigError(f"cannot read {path}: {e.strerror}") from None


def parse_model_server_config(text: str, origin: str = "<string>",
                              relative_to: Optional[str] = None
                              ) -> ModelServerConfig:
  """Parses and checks a text ModelServerConfig (relative base paths allowed)."""
  config = ModelServerConfig()
  try:
    text_format.Parse(text, config)
  except text_format.ParseError as e:
    raise ConfigError(f"{origin}: {e}") from None
  if config.WhichOneof("config") != "model_config_list":
    raise ConfigError(f"{origin}: only model_config_list is supported")
  seen = set()
  for model in config.model_config_list.config:
    if not model.name:
      raise ConfigError(f"{origin}: a model config has no name")
    if model.name in seen:
      raise ConfigError(f"{origin}: model '{model.name}' is configured twice")
    seen.add(model.name)
    if not model.base_path:
      raise ConfigError(f"{origin}: model '{model.name}' has no base_path")
    if model.model_platform not in ("", "tensorflow"):
      raise ConfigError(f"{origin}: model '{model.name}': platform "
                        f"'{model.model_platform}' is not supported")
    if relative_to and not os.path.isabs(model.base_path):
      model.base_path = os.path.normpath(os.path.join(relative_to,
                                                      model.base_path))
    for label, version in model.version_labels.items():
      if version <= 0:
        raise ConfigError(f"{origin}: label '{label}' of model "
                          f"'{model.name}' needs a positive version")
  return config


def load_model_server_config(path: str) -> ModelServerConfig:
  """Reads `--model_config_file`; relative base paths are taken from the CWD."""
  return parse_model_server_config(_read(path), path)


def single_model_config(name: str, base_path: str) -> ModelServerConfig:
  """What `--model_name=... --model_base_path=...` means (latest version)."""
  config = ModelServerConfig()
  model = config.model_config_list.config.add()
  model.name = name
  model.base_path = os.path.abspath(base_path)
  model.model_platform = "tensorflow"
  return config


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
  """The batching parameters this server honours, with TF Serving's defaults."""
  max_batch_size: int = 32
  batch_timeout_micros: int = 1000
  max_enqueued_batches: int = 100
  num_batch_threads: int = 2
  allowed_batch_sizes: tuple = ()
  enable_large_batch_splitting: bool = False

  @property
  def timeout_s(self) -> float:
    return self.batch_timeout_micros / 1e6


def parse_batching_parameters(text: str, origin: str = "<string>"
                              ) -> BatchingOptions:
  params = BatchingParameters()
  try:
    text_format.Parse(text, params)
  except text_format.ParseError as e:
    raise ConfigError(f"{origin}: {e}") from None
  defaults = BatchingOptions()
  values = {}
  for name in ("max_batch_size", "batch_timeout_micros",
               "max_enqueued_batches", "num_batch_threads"):
    values[name] = (getattr(params, name).value if params.HasField(name)
                    else getattr(defaults, name))
  if params.HasField("max_execution_batch_size"):
    values["max_batch_size"] = min(values["max_batch_size"],
                                   params.max_execution_batch_size.value)
  if values["max_batch_size"] < 1:
    raise ConfigError(f"{origin}: max_batch_size must be >= 1")
  if values["batch_timeout_micros"] < 0:
    raise ConfigError(f"{origin}: batch_timeout_micros must be >= 0")
  if values["num_batch_threads"] < 1:
    raise ConfigError(f"{origin}: num_batch_threads must be >= 1")
  if values["max_enqueued_batches"] < 1:
    raise ConfigError(f"{origin}: max_enqueued_batches must be >= 1")
  allowed = tuple(params.allowed_batch_sizes)
  if allowed and (list(allowed) != sorted(set(allowed))
                  or allowed[-1] != values["max_batch_size"]):
    raise ConfigError(f"{origin}: allowed_batch_sizes must increase and end "
                      "with max_batch_size")
  values["allowed_batch_sizes"] = allowed
  values["enable_large_batch_splitting"] = (
      params.HasField("enable_large_batch_splitting")
      and params.enable_large_batch_splitting.value)
  return BatchingOptions(**values)


def load_batching_parameters(path: str) -> BatchingOptions:
  return parse_batching_parameters(_read(path), path)


def version_policy(model: ModelConfig):
  """("latest", n) | ("all", None) | ("specific", [versions])."""
  policy = model.model_version_policy
  kind = policy.WhichOneof("policy_choice")
  if kind == "all":
    return "all", None
  if kind == "specific":
    versions = sorted(set(policy.specific.versions))
    if not versions:
      raise ConfigError(f"model '{model.name}': specific policy lists no "
                        "versions")
    return "specific", versions
  n = policy.latest.num_versions if kind == "latest" else 1
  return "latest", max(1, n)


def wanted_versions(model: ModelConfig, on_disk: List[int]) -> List[int]:
  kind, arg = version_policy(model)
  on_disk = sorted(set(on_disk))
  if kind == "all":
    return on_disk
  if kind == "specific":
    return [v for v in arg if v in on_disk]
  return on_disk[-arg:]


def labels(model: ModelConfig) -> Dict[str, int]:
  return dict(model.version_labels)
