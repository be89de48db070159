//! The test support of Conflux: the BBB node simulator (`sim`, served by the
//! `conflux-bbb-sim` binary), the harness the end-to-end tests use to start real processes, and
//! `procfs`, which reads the benchmarks' process figures.

pub mod harness;
pub mod procfs;
pub mod sim;
