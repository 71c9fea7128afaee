"""TF Serving's gRPC services (official protos of `tensorflow-serving-api`).

`tensorflow.serving.PredictionService`: Predict, GetModelMetadata (Classify,
Regress and MultiInference answer UNIMPLEMENTED). `tensorflow.serving.
ModelService`: GetModelStatus (HandleReloadConfigRequest: UNIMPLEMENTED).
"""

import grpc
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import tensors
from serving.errors import ServingError, invalid
from serving.service import PredictService, unexpected

_STATES = get_model_status_pb2.ModelVersionStatus.State


def _spec_args(spec):
  version = label = None
  choice = spec.WhichOneof("version_choice")
  if choice == "version":
    version = spec.version.value
  elif choice == "version_label":
    label = spec.version_label
  if not spec.name:
    raise invalid("Missing ModelSpec name")
  return spec.name, version, label


async def _abort(context, e: Exception):
  if not isinstance(e, ServingError):
    e = unexpected(e)
  await context.abort(e.grpc_code, e.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):

  def __init__(self, service: PredictService):
    self.service = service

  async def Predict(self, request, context):  # noqa: N802
    try:
      name, version, label = _spec_args(request.model_spec)
      with self.service.manager.acquire(name, version, label) as servable:
        signature = servable.signature(request.model_spec.signature_name)
        arrays = {}
        for key, proto in request.inputs.items():
          spec = signature.inputs.get(key)
          if spec is None:
            arrays[key] = None
            continue
          arrays[key] = tensors.proto_to_array(proto, spec, key)
        if any(v is None for v in arrays.values()):
          arrays = {k: (v if v is not None else tensors.np.zeros([0]))
                    for k, v in arrays.items()}
        out = await self.service.predict(servable, signature, arrays,
                                         tuple(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature.name
        for key, value in out.items():
          response.outputs[key].CopyFrom(tensors.array_to_proto(value))
      return response
    except Exception as e:  # pylint: disable=broad-except
      await _abort(context, e)

  async def GetModelMetadata(self, request, context):  # noqa: N802
    try:
      name, version, label = _spec_args(request.model_spec)
      if not request.metadata_field:
        raise invalid("GetModelMetadataRequest must specify at least one "
                      "metadata_field")
      for field in request.metadata_field:
        if field != "signature_def":
          raise invalid(f"Metadata field {field} is not supported")
      with self.service.manager.acquire(name, version, label) as servable:
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(
            self.service.signature_def_map(servable))
      return response
    except Exception as e:  # pylint: disable=broad-except
      await _abort(context, e)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):

  def __init__(self, service: PredictService):
    self.service = service

  async def GetModelStatus(self, request, context):  # noqa: N802
    try:
      name, version, label = _spec_args(request.model_spec)
      if label is not None:
        with self.service.manager.acquire(name, None, label) as servable:
          version = servable.version
      response = get_model_status_pb2.GetModelStatusResponse()
      for v, state, code, msg in self.service.manager.status(name, version):
        entry = response.model_version_status.add()
        entry.version = v
        entry.state = _STATES.Value(state)
        entry.status.error_code = error_codes_pb2.Code.Value(code)
        entry.status.error_message = msg
      return response
    except Exception as e:  # pylint: disable=broad-except
      await _abort(context, e)


def add_services(server, service: PredictService) -> None:
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      PredictionServicer(service), server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(
      ModelServicer(service), server)
