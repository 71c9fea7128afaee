// Single-thread timing of LinrHammingTopK's CPU scan
// (custom_ops/quantization/hamming_cpu_scan.h) without TensorFlow: ns per
// (query, item) pair per instruction-set path, thread CPU time (robust to
// other load on the box). Also checks that every path returns the same top-k
// as the portable one.
//
//   g++ -O3 -std=c++17 -I. bench/quant_cpu_kernel_bench.cc -o /tmp/hbench
//   /tmp/hbench [num_items=1000000] [words=4] [batch=64] [pass=1.0] [k=100]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "custom_ops/quantization/hamming_cpu_scan.h"

using namespace linr;              // NOLINT
using namespace linr::hamming_cpu;  // NOLINT

static double ThreadSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? atoll(argv[1]) : 1000000;
  const int64_t words = argc > 2 ? atoll(argv[2]) : 4;
  const int64_t batch = argc > 3 ? atoll(argv[3]) : 64;
  const double pass_rate = argc > 4 ? atof(argv[4]) : 1.0;
  const int64_t k = argc > 5 ? atoll(argv[5]) : 100;
  std::mt19937_64 rng(1);
  std::vector<uint32_t> codes(n * words), queries(batch * words);
  for (auto& c : codes) c = static_cast<uint32_t>(rng());
  for (auto& c : queries) c = static_cast<uint32_t>(rng());
  const int64_t num_words = (n + 31) / 32;
  std::vector<uint32_t> mask(batch * num_words, 0);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<uint32_t> row(num_words, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (u(rng) < pass_rate) row[i / 32] |= 1u << (i % 32);
  }
  for (int64_t b = 0; b < batch; ++b) std::copy(row.begin(), row.end(), mask.begin() + b * num_words);
  const int64_t tile_words = std::max<int64_t>(1, (atoi(getenv("TB") ? getenv("TB") : "16") * 1024) / (128 * words));
  std::vector<std::vector<ScoredItem>> reference;
  const char* names[] = {"portable", "popcnt", "avx2"};
  for (int isa = 0; isa < 3; ++isa) {
    if (isa == 2 && !__builtin_cpu_supports("avx2")) break;
    setenv("LINR_CPU_ISA", names[isa], 1);
    const Kernels kern = SelectKernels(words);
    double best = 1e30;
    std::vector<CandidateBuffer<int>> buffers(batch);
    for (int rep = 0; rep < (isa == 0 ? 1 : 5); ++rep) {
      for (auto& b : buffers) b.Reset(k, n);
      const double t0 = ThreadSeconds();
      ScanRange(kern, queries.data(), codes.data(), mask.data(), batch, words, n, num_words, 0,
                num_words, tile_words, buffers.data());
      best = std::min(best, ThreadSeconds() - t0);
    }
    std::vector<std::vector<ScoredItem>> got(batch);
    for (int64_t b = 0; b < batch; ++b) {
      got[b] = buffers[b].Finish();
      std::sort(got[b].begin(), got[b].end(),
                [](const ScoredItem& x, const ScoredItem& y) { return RanksBefore(x, y); });
    }
    bool same = true;
    if (isa == 0) {
      reference = got;
    } else {
      for (int64_t b = 0; b < batch; ++b) {
        same = same && got[b].size() == reference[b].size();
        for (size_t j = 0; same && j < got[b].size(); ++j) {
          same = got[b][j].index == reference[b][j].index && got[b][j].score == reference[b][j].score;
        }
      }
    }
    const double pairs = static_cast<double>(batch) * n * pass_rate;
    printf("isa=%-8s N=%lld m=%lld B=%lld pass=%.2f: %.2f ms  %.3f ns/pair  %s\n",
           IsaName(kern.isa), static_cast<long long>(n), static_cast<long long>(32 * words),
           static_cast<long long>(batch), pass_rate, best * 1e3, best * 1e9 / pairs,
           same ? "same as portable" : "MISMATCH");
  }
  return 0;
}
