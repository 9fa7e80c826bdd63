//! The Mesos side as the agent reaches it: the core's views and parsers
//! (`cloudburst_core::mesos`), and the HTTP client.

pub use cloudburst_core::mesos::*;

pub mod client;
