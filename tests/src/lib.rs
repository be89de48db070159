//! The test support of Conflux: the BBB node simulator (`sim`, served by the
//! `conflux-bbb-sim` binary), and the harness the end-to-end tests and the benchmarks use to
//! start real processes. It does not link the balancer's library.

pub mod harness;
pub mod sim;
