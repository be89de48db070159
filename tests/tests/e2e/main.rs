//! All end-to-end tests, compiled into one binary (as ripgrep does) so they link once.
//! Each test starts the real binaries on loopback through `conflux_tests::harness`.

mod interop;
mod sim_api;
mod sim_faults;
mod tidy;
