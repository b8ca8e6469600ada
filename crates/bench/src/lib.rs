//! Benchmarks and generators for scimsync: synthetic directories (`gen-directory`), planner
//! scale, and provisioning throughput against the emulator. Figures are recorded in
//! BENCHMARKS.md with the commands that reproduce them.
