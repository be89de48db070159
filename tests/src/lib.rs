//! The test support of Conflux: the BBB node simulator (`sim`, served by the
//! `conflux-bbb-sim` binary) and the harness the end-to-end tests use to start real processes.

pub mod harness;
pub mod sim;
