//! Support for the bench binaries in `src/bin/`: each starts real processes through the test
//! harness (`conflux-tests`) and prints its figures. `procfs` reads CPU time and memory.
//!
//! This is the only crate beside the balancer itself that links the balancer's library (for
//! placement timing and for filling a store directly); the simulator and the end-to-end tests
//! do not, so they build in parallel with it.

pub mod procfs;
