//! No code: this crate's dependencies (managed by `cargo hakari`, see `.config/hakari.toml`) are
//! the union of the features the workspace asks of each dependency, so that every crate depending
//! on it builds each dependency once, whichever crates `cargo` was asked to build.
