//! All end-to-end tests, compiled into one binary (as ripgrep does) so they link once.
//! Each test starts the real binaries on loopback through `conflux_tests::harness`.

mod active_active;
mod agent;
mod archive_door;
mod balancer_api;
mod balancer_failover;
mod balancer_mconf;
mod balancer_recordings;
mod balancer_scalelite;
mod callbacks;
mod demo;
mod hardening;
mod https_nodes;
mod images;
mod interop;
mod manifests;
mod monitoring;
mod nagios;
mod packages;
mod recordings_network;
mod sim_api;
mod sim_faults;
mod tidy;
mod web;
