//! The process's open-file limit: every connection is a file descriptor, so a server that caps
//! connections at 1024 needs more than the common default soft limit of 1024.

/// Raises the soft open-file limit to the hard limit (as Go's runtime does at start); returns the
/// limit now in force. Binaries call it first thing; failure leaves the limit as it was.
pub fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}
