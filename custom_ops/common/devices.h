// Device tags of the kernels' device functors (tensorflow/custom-op pattern:
// Functor<CPUDevice, ...> in <op>_kernels.cc, Functor<GPUDevice, ...> in
// <op>_kernels_gpu.cu.cc).
#ifndef LINR_CUSTOM_OPS_COMMON_DEVICES_H_
#define LINR_CUSTOM_OPS_COMMON_DEVICES_H_

#include "tensorflow/core/framework/op_kernel.h"  // declares both Eigen devices

namespace linr {

using CPUDevice = Eigen::ThreadPoolDevice;
using GPUDevice = Eigen::GpuDevice;

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_COMMON_DEVICES_H_
