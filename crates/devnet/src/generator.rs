//! Chains of mainnet-sized blocks for the indexer's benchmarks (filled in below).
