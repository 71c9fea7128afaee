// Why the B = 1 fp32 top-k scan fell short of the read bandwidth (issue 13):
// 1M x 128 fp32 rows (512 MB) scored against one query by 2 threads, three
// loop shapes, with and without software prefetch:
//   sum          plain sequential read (the floor's kernel);
//   interleaved  the previous single-query kernel: 4 rows advanced together,
//                8 floats of each per step (4 streams 512 B apart);
//   sequential   the current kernel (topk_cpu.h ScoreGroupAvx2Single): the 4
//                rows one after another (same bits: each row's fma chain is
//                unchanged).
// Prefetch distance in items (0 = none); the op prefetches 16 items ahead.
//   g++ -O2 -std=c++17 -I. -pthread bench/cpu_row_stream_bench.cc -o /tmp/rows && /tmp/rows
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {
constexpr int64_t kN = 1000000, kD = 128;
float* items;
alignas(32) float query[kD];
float sink[64];

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

__attribute__((target("avx2,fma"))) void Scan(int64_t begin, int64_t end, int mode, int ahead,
                                              int slot) {
  __m256 total = _mm256_setzero_ps();
  for (int64_t i = begin; i < end; i += 4) {
    if (ahead > 0) {
      const char* p = reinterpret_cast<const char*>(items + (i + ahead) * kD);
      for (int off = 0; off < 4 * kD * 4; off += 64) __builtin_prefetch(p + off, 0, 0);
    }
    const float* x = items + i * kD;
    if (mode == 0) {
      for (int64_t j = 0; j < 4 * kD; j += 8) total = _mm256_add_ps(total, _mm256_loadu_ps(x + j));
      continue;
    }
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    if (mode == 1) {
      for (int64_t j = 0; j < kD; j += 8) {
        const __m256 q = _mm256_loadu_ps(query + j);
        for (int r = 0; r < 4; ++r) acc[r] = _mm256_fmadd_ps(q, _mm256_loadu_ps(x + r * kD + j), acc[r]);
      }
    } else {
      for (int r = 0; r < 4; ++r) {
        for (int64_t j = 0; j < kD; j += 8) {
          acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(query + j), _mm256_loadu_ps(x + r * kD + j), acc[r]);
        }
      }
    }
    total = _mm256_add_ps(total, _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]),
                                               _mm256_add_ps(acc[2], acc[3])));
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, total);
  sink[slot * 8] += out[0];
}
}  // namespace

int main() {
  items = static_cast<float*>(std::aligned_alloc(64, kN * kD * 4));
  for (int64_t i = 0; i < kN * kD; ++i) items[i] = static_cast<float>(i % 7) * 0.1f;
  for (int j = 0; j < kD; ++j) query[j] = 1.0f;
  const char* names[] = {"sum", "interleaved", "sequential"};
  const int threads = 2, shards = 8;
  for (int mode = 0; mode < 3; ++mode) {
    for (int ahead : {0, 8, 16}) {
      double best = 1e9;
      for (int rep = 0; rep < 5; ++rep) {
        const double t0 = Now();
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
          pool.emplace_back([=] {
            for (int s = t; s < shards; s += threads) {
              Scan(s * kN / shards, (s + 1) * kN / shards, mode, ahead, t);
            }
          });
        }
        for (auto& th : pool) th.join();
        best = std::min(best, Now() - t0);
      }
      std::printf("%-11s prefetch %2d items: %7.2f ms  %5.1f GB/s\n", names[mode], ahead,
                  best * 1e3, kN * kD * 4 / best / 1e9);
    }
  }
  return 0;
}
