//! Tests of the generated crates through their public APIs (see `tests/`),
//! and the implementations of specs nobody here wrote that they drive.

pub mod petstore;
