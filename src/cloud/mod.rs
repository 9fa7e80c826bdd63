//! The cloud adapters: EC2, OpenStack and admin scripts, behind the
//! core's `CloudPort` (the types they share are `cloudburst_core::cloud`).

pub use cloudburst_core::cloud::*;

pub mod clouds;
pub mod ec2;
pub mod openstack;
pub mod script;

/// The current-thread runtime an API client runs its calls on (the cycle
/// is synchronous; each provider blocks on its own calls).
pub(crate) fn runtime(client: &str) -> Result<tokio::runtime::Runtime, CloudError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CloudError {
            kind: ErrorKind::Invalid,
            message: format!("cannot start the {client} client's runtime: {e}"),
        })
}
