// Merkle throughput: leaf hashing, compact-range appends, proof making and
// checking. The baseline in the same run is BM_HashChildren (one SHA-256 of a
// 65-byte node): an append costs one leaf-level node hash on average, so
// appends/s divided by node hashes/s shows the overhead of the range itself.
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "merkle/compact_range.h"
#include "merkle/hash.h"
#include "merkle/proof_builder.h"
#include "merkle/proof_verify.h"

namespace stepproof::merkle {
namespace {

std::vector<Hash> MakeLeaves(size_t n) {
  std::vector<Hash> leaves(n);
  for (size_t i = 0; i < n; ++i) leaves[i] = HashLeaf(std::to_string(i));
  return leaves;
}

void BM_HashChildren(benchmark::State& state) {
  Hash a = HashLeaf("a"), b = HashLeaf("b");
  for (auto _ : state) {
    a = HashChildren(a, b);
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HashChildren);

void BM_HashLeaf(benchmark::State& state) {
  std::string data(state.range(0), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(HashLeaf(data));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_HashLeaf)->Arg(64)->Arg(256)->Arg(4096);

void BM_CompactRangeAppend(benchmark::State& state) {
  std::vector<Hash> leaves = MakeLeaves(1 << 16);
  CompactRange range;
  size_t i = 0;
  for (auto _ : state) {
    range.Append(leaves[i++ & 0xffff]);
  }
  benchmark::DoNotOptimize(range.Root());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CompactRangeAppend);

// A store holding every node of a tree of `size` leaves.
struct Tree {
  explicit Tree(size_t size) : leaves(MakeLeaves(size)) {
    for (const Hash& h : leaves) {
      range.Append(h, [&](const NodeId& id, const Hash& x) { store.Put(id, x); });
    }
  }
  std::vector<Hash> leaves;
  CompactRange range;
  InMemoryNodeStore store;
};

void BM_MakeInclusionProof(benchmark::State& state) {
  static Tree* tree = new Tree(1 << 20);
  uint64_t n = tree->leaves.size();
  uint64_t i = 0;
  for (auto _ : state) {
    auto proof = MakeInclusionProof(tree->store, (i += 7919) % n, n);
    benchmark::DoNotOptimize(proof);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MakeInclusionProof);

void BM_VerifyInclusion(benchmark::State& state) {
  static Tree* tree = new Tree(1 << 20);
  uint64_t n = tree->leaves.size();
  Hash root = tree->range.Root();
  auto proof = *MakeInclusionProof(tree->store, 12345, n);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        VerifyInclusion(12345, n, tree->leaves[12345], proof, root));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyInclusion);

void BM_MakeAndVerifyConsistency(benchmark::State& state) {
  static Tree* tree = new Tree(1 << 20);
  uint64_t n = tree->leaves.size();
  Hash r2 = tree->range.Root();
  uint64_t m = 777777;
  Hash r1 = *MakeRoot(tree->store, m);
  for (auto _ : state) {
    auto proof = MakeConsistencyProof(tree->store, m, n);
    benchmark::DoNotOptimize(VerifyConsistency(m, n, r1, r2, *proof));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MakeAndVerifyConsistency);

}  // namespace
}  // namespace stepproof::merkle

BENCHMARK_MAIN();
