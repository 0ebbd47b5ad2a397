//! Helpers for tests that run the real `liandong` binary as separate processes.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::TcpListener;
use std::process::{Command, Output};

use anyhow::{ensure, Result};

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_liandong");

/// A free port on 127.0.0.1 (bound, then released for the node to take).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `liandong` with none of the caller's `LIANDONG_*` settings, node logs at info, no colour.
pub fn liandong() -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "LIANDONG_CONFIG",
        "LIANDONG_API",
        "LIANDONG_LISTEN",
        "LIANDONG_API_LISTEN",
        "LIANDONG_METRICS_LISTEN",
        "LIANDONG_DATA_DIR",
        "LIANDONG_PARENT_ADDRESS",
        "LIANDONG_TOKEN",
        "LIANDONG_INSECURE",
    ] {
        c.env_remove(v);
    }
    c.env("RUST_LOG", "warn,liandong=info").env("NO_COLOR", "1");
    c
}

/// The output of a command that must have succeeded; its output in the error if not.
pub fn check(what: &str, out: Output) -> Result<Output> {
    ensure!(
        out.status.success(),
        "`liandong {what}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}
