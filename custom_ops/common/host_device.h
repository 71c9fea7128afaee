// Portability macros for logic shared between the CPU kernels and future CUDA
// kernels (.cu.cc files compiled by nvcc).
#ifndef LINR_CUSTOM_OPS_COMMON_HOST_DEVICE_H_
#define LINR_CUSTOM_OPS_COMMON_HOST_DEVICE_H_

#if defined(__CUDACC__) || defined(__HIPCC__)
#define LINR_HOST_DEVICE __host__ __device__
#define LINR_FORCE_INLINE __forceinline__
#else
#define LINR_HOST_DEVICE
#define LINR_FORCE_INLINE inline __attribute__((always_inline))
#endif

#endif  // LINR_CUSTOM_OPS_COMMON_HOST_DEVICE_H_
