// CPU scan of LinrMoLTopK over a range of mask words (no TensorFlow
// dependency): for each item some query lets pass, its Q rows are converted
// to float32 once, then scored with the full MoL (mol_common.h) for every
// query whose bit is set; a score enters the query's running top-k
// (CandidateBuffer) only when it beats the k-th best so far. Nothing of size
// [B, N] or [B, N, P*Q] is written. Two builds of the same code: portable and
// AVX2 + FMA (chosen at run time; $LINR_CPU_ISA=portable forces the first);
// both evaluate the same operations in the same order.
#ifndef LINR_CUSTOM_OPS_MOL_MOL_CPU_SCAN_H_
#define LINR_CUSTOM_OPS_MOL_MOL_CPU_SCAN_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "custom_ops/mol/mol_common.h"
#include "custom_ops/mol/mol_kernels.h"
#include "custom_ops/select/candidate_buffer.h"

namespace linr {
namespace mol {

// queries: [B, P, d] float32; words [w_begin, w_end) of the mask.
template <typename L>
LINR_FORCE_INLINE void ScanWordsImpl(const MoLTopKArgs& a, int64_t w_begin, int64_t w_end,
                                     CandidateBuffer<float>* buffers) {
  using S = typename L::Storage;
  const S* items = static_cast<const S*>(a.items);
  const int64_t P = a.p, Q = a.q, d = a.dim, pq = P * Q, row = Q * d;
  const uint32_t* mask = reinterpret_cast<const uint32_t*>(a.mask);
  std::vector<float> converted(static_cast<size_t>(row));
  float x[kMaxPairs];
  for (int64_t w = w_begin; w < w_end; ++w) {
    uint32_t any = 0;
    for (int64_t b = 0; b < a.batch; ++b) any |= mask[b * a.num_words + w];
    const int64_t tail = a.num_items - w * 32;
    if (tail < 32) any &= (tail <= 0) ? 0u : ((1u << tail) - 1u);
    while (any) {
      const int bit = __builtin_ctz(any);
      any &= any - 1;
      const int64_t i = w * 32 + bit;
      const float* e;
      if (sizeof(S) == sizeof(float)) {
        e = reinterpret_cast<const float*>(items + i * row);
      } else {
        const S* src = items + i * row;
        for (int64_t j = 0; j < row; ++j) converted[j] = L::Load(src, j);
        e = converted.data();
      }
      for (int64_t b = 0; b < a.batch; ++b) {
        if (!((mask[b * a.num_words + w] >> bit) & 1u)) continue;
        const float* qb = a.queries + b * P * d;
        for (int64_t p = 0; p < P; ++p) {
          for (int64_t q = 0; q < Q; ++q) x[p * Q + q] = Dot(qb + p * d, e + q * d, d);
        }
        const float s = Mix(x, static_cast<int>(pq), a.gate_bias + b * pq, a.gate_weight,
                            a.softmax);
        CandidateBuffer<float>& buf = buffers[b];
        if (!(s <= buf.Threshold())) buf.Push(s, static_cast<int32_t>(i));
      }
    }
  }
}

template <typename L>
void ScanWordsPortable(const MoLTopKArgs& a, int64_t w_begin, int64_t w_end,
                       CandidateBuffer<float>* buffers) {
  ScanWordsImpl<L>(a, w_begin, w_end, buffers);
}

#if defined(__x86_64__) && defined(__GNUC__)
template <typename L>
__attribute__((target("avx2,fma"))) void ScanWordsAvx2(const MoLTopKArgs& a, int64_t w_begin,
                                                       int64_t w_end,
                                                       CandidateBuffer<float>* buffers) {
  ScanWordsImpl<L>(a, w_begin, w_end, buffers);
}
#endif

inline bool UseAvx2() {
  const char* env = std::getenv("LINR_CPU_ISA");
  if (env != nullptr && std::strcmp(env, "portable") == 0) return false;
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

template <typename L>
void ScanWords(const MoLTopKArgs& a, int64_t w_begin, int64_t w_end,
               CandidateBuffer<float>* buffers) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (UseAvx2()) return ScanWordsAvx2<L>(a, w_begin, w_end, buffers);
#endif
  ScanWordsPortable<L>(a, w_begin, w_end, buffers);
}

}  // namespace mol
}  // namespace linr

#endif  // LINR_CUSTOM_OPS_MOL_MOL_CPU_SCAN_H_
