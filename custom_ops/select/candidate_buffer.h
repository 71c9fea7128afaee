// Running top-k of one query on the CPU, shared by the float top-k kernels
// (topk/topk_kernels.cc) and the Hamming kernel (quantization/
// hamming_cpu_scan.h). No TensorFlow dependency.
#ifndef LINR_CUSTOM_OPS_SELECT_CANDIDATE_BUFFER_H_
#define LINR_CUSTOM_OPS_SELECT_CANDIDATE_BUFFER_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "custom_ops/select/ordering.h"

namespace linr {

// Score types of CandidateBuffer: the threshold before the buffer is full
// (admits every score) and the stored (rankable) float score.
template <typename Score>
struct CandidateScore;

template <>
struct CandidateScore<float> {
  // NaN: the tile kernels' test !(s <= threshold) admits everything.
  static float Empty() { return __builtin_nanf(""); }
  static float Rankable(float s) { return RankableScore(s); }
};

template <>
struct CandidateScore<int> {
  // Matching-bit counts are >= 0.
  static int Empty() { return -1; }
  static float Rankable(int s) { return static_cast<float>(s); }
};

// Keeps the best `k` of a stream of candidates arriving in ascending index.
// Up to 2k entries; when full, compacts to the best k with nth_element and
// from then on Threshold() is the k-th best score. Items arrive in ascending
// index, so an equal score always loses the tie and the strict test
// `score > Threshold()` is exact; admitting extra candidates is always safe.
template <typename Score>
class CandidateBuffer {
 public:
  // `max_arrivals` (an upper bound on pushes) only sizes the reservation.
  void Reset(int64_t k, int64_t max_arrivals) {
    k_ = k;
    threshold_ = CandidateScore<Score>::Empty();
    items_.clear();
    items_.reserve(static_cast<size_t>(std::min<int64_t>(2 * k, std::max<int64_t>(max_arrivals, 1))));
  }

  // The k-th best score once full, CandidateScore<Score>::Empty() before.
  Score Threshold() const { return threshold_; }

  void Push(Score score, int32_t index) {
    items_.push_back(ScoredItem{CandidateScore<Score>::Rankable(score), index});
    if (static_cast<int64_t>(items_.size()) >= 2 * k_) Compact();
  }

  // Reduces the buffer to (at most) its best k entries, unordered.
  std::vector<ScoredItem>& Finish() {
    if (static_cast<int64_t>(items_.size()) > k_) Compact();
    return items_;
  }

 private:
  void Compact() {
    auto by_rank = [](const ScoredItem& a, const ScoredItem& b) { return RanksBefore(a, b); };
    std::nth_element(items_.begin(), items_.begin() + (k_ - 1), items_.end(), by_rank);
    items_.resize(k_);
    threshold_ = static_cast<Score>(items_[k_ - 1].score);
  }

  int64_t k_ = 0;
  Score threshold_ = CandidateScore<Score>::Empty();
  std::vector<ScoredItem> items_;
};

}  // namespace linr

#endif  // LINR_CUSTOM_OPS_SELECT_CANDIDATE_BUFFER_H_
