//! Benchmarks and generators for scimsync: synthetic directories (`gen-directory`), planner
//! scale (`bench-plan`), provisioning throughput (`bench-provision`) and no-change incremental
//! cycles (`bench-incremental`) against the emulator. Figures are recorded in BENCHMARKS.md with
//! the commands that reproduce them.

pub mod cpu;
pub mod generate;
pub mod harness;
pub mod phases;
pub mod rss;
