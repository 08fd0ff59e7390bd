//! Integration tests over real HTTP on loopback, against a real SQLite file.

mod auth;
mod ext;
mod hostile;
mod ops;
mod support;
mod v1;
