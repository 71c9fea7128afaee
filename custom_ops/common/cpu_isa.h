// Run-time choice of the CPU instruction-set path (host only, no TensorFlow
// dependency), shared by every CPU kernel with SIMD paths.
//
// $LINR_CPU_ISA caps the path (read on every call, so a test can switch it
// between calls): "portable" < "popcnt" < "avx2" < "avx512"; unset (or any
// other value) = the best the CPU supports. A kernel without a path at the
// cap level takes its best path below the cap (e.g. top-k has no popcnt
// path: "popcnt" runs its portable code). The CPU's features are probed
// once (__builtin_cpu_supports) and cached.
#ifndef LINR_CUSTOM_OPS_COMMON_CPU_ISA_H_
#define LINR_CUSTOM_OPS_COMMON_CPU_ISA_H_

#include <cstdlib>
#include <cstring>

namespace linr {
namespace cpu_isa {

enum Level { kPortable = 0, kPopcnt = 1, kAvx2 = 2, kAvx512 = 3 };

inline const char* LevelName(int level) {
  switch (level) {
    case kPopcnt: return "popcnt";
    case kAvx2: return "avx2";
    case kAvx512: return "avx512";
    default: return "portable";
  }
}

// The cap named by $LINR_CPU_ISA (kAvx512 when unset or unknown).
inline int EnvCap() {
  const char* env = std::getenv("LINR_CPU_ISA");
  if (env == nullptr) return kAvx512;
  if (std::strcmp(env, "portable") == 0) return kPortable;
  if (std::strcmp(env, "popcnt") == 0) return kPopcnt;
  if (std::strcmp(env, "avx2") == 0) return kAvx2;
  return kAvx512;
}

#if defined(__x86_64__) && defined(__GNUC__)
inline bool HasPopcnt() {
  static const bool v = __builtin_cpu_supports("popcnt");
  return v;
}
// AVX2 level: AVX2 + FMA + F16C + BMI2 + POPCNT (Haswell / Zen and later).
inline bool HasAvx2() {
  static const bool v = HasPopcnt() && __builtin_cpu_supports("avx2") &&
                        __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
                        __builtin_cpu_supports("bmi2");
  return v;
}
// AVX-512 level: the AVX2 level + AVX-512 F/BW/VL/DQ (Skylake-SP, Zen 4 and
// later). VPOPCNTDQ is probed separately (Ice Lake, Zen 4 and later).
inline bool HasAvx512() {
  static const bool v = HasAvx2() && __builtin_cpu_supports("avx512f") &&
                        __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512dq");
  return v;
}
inline bool HasAvx512Vpopcntdq() {
  static const bool v = HasAvx512() && __builtin_cpu_supports("avx512vpopcntdq");
  return v;
}
#else
inline bool HasPopcnt() { return false; }
inline bool HasAvx2() { return false; }
inline bool HasAvx512() { return false; }
inline bool HasAvx512Vpopcntdq() { return false; }
#endif

// The best level <= the cap that the CPU supports, where `avx512_ok` says
// whether the AVX-512 level also has what the caller's AVX-512 path needs.
inline int Select(bool avx512_ok) {
  const int cap = EnvCap();
  if (cap >= kAvx512 && avx512_ok && HasAvx512()) return kAvx512;
  if (cap >= kAvx2 && HasAvx2()) return kAvx2;
  if (cap >= kPopcnt && HasPopcnt()) return kPopcnt;
  return kPortable;
}

}  // namespace cpu_isa
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_COMMON_CPU_ISA_H_
