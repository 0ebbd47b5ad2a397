//! A seam to the process's allocator, for the one thing the store needs from it: handing
//! memory it has freed back to the system.
//!
//! Opening a large store builds its index through buffers several times the index's own size
//! (the snapshot's bytes, the sorted entries), freed as soon as the index stands. The system
//! allocator returns such large blocks to the kernel at once; mimalloc, which the `liandong`
//! binary uses, keeps them for a while and only gives them back when the process next
//! allocates from its arenas — an idle node never does, so a node holding a million events
//! stayed at 434 MiB resident instead of 189. The library does not know which allocator it
//! runs on (its tests use the system's), so the binary registers how to release, and the store
//! asks for it after its large one-off work.
use std::sync::OnceLock;

static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Registers how this process's allocator returns freed memory to the system. The first call
/// wins; without one, [`release_freed`] does nothing (the system allocator needs nothing).
pub fn set_release(release: fn()) {
    let _ = RELEASE.set(release);
}

/// Returns memory freed so far to the system, if the allocator needs to be asked.
pub fn release_freed() {
    if let Some(release) = RELEASE.get() {
        release();
    }
}
