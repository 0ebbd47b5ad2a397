//! Crash safety with the real binary: whatever the CLI got a receipt for survives `kill -9`
//! of `liandong serve` right after.
#[path = "common/process.rs"]
mod process;
use process::{check, free_port, liandong};

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// The node's local API token, read from the api.token file its `init` wrote.
static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A `liandong serve` child process, killed (SIGKILL) when dropped, whatever happened.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(config: &Path, api: SocketAddr, log: PathBuf) -> Result<Server> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = liandong()
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("spawning liandong serve")?;
        let mut server = Server { child, log };
        server.wait_for(api)?;
        Ok(server)
    }

    /// Polls until the local API accepts connections.
    fn wait_for(&mut self, api: SocketAddr) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("liandong serve exited with {status}:\n{}", self.log_text());
            }
            if TcpStream::connect_timeout(&api, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > WAIT {
                bail!(
                    "liandong serve did not open {api} within {WAIT:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`, and reap it.
    fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        let status = self.child.wait()?;
        ensure!(!status.success(), "serve exited by itself: {status}");
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client command against the node's API, with `--json`; returns the parsed output.
fn client(api: &str, args: &[&str]) -> Result<Value> {
    let out = liandong()
        .args(["--api", api, "--json"])
        .args(args)
        .env(
            "LIANDONG_TOKEN",
            TOKEN.get().map(String::as_str).unwrap_or(""),
        )
        .stdin(Stdio::null())
        .output()?;
    let out = check(&args.join(" "), out)?;
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "output of {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn field<'v>(v: &'v Value, key: &str) -> Result<&'v Value> {
    v.get(key).with_context(|| format!("no '{key}' in {v}"))
}

fn ids(list: &Value, key: &str) -> Result<Vec<String>> {
    field(list, key)?
        .as_array()
        .with_context(|| format!("'{key}' is not a list"))?
        .iter()
        .map(|item| Ok(field(item, "id")?.as_str().context("id")?.to_string()))
        .collect()
}

fn send_notices(api: &str, from: usize, to: usize, sent: &mut Vec<String>) -> Result<u64> {
    let mut last_seq = 0;
    for i in from..to {
        let receipt = client(
            api,
            &[
                "guidance",
                "send",
                "--title",
                &format!("第{i}号通知"),
                "--body",
                "请各市县政协按时报送调研成果。",
            ],
        )?;
        sent.push(
            field(&receipt, "record_id")?
                .as_str()
                .context("id")?
                .to_string(),
        );
        last_seq = field(&receipt, "seq")?.as_u64().context("seq")?;
    }
    Ok(last_seq)
}

fn assert_all_there(api: &str, topic: &str, sent: &[String], events: u64) -> Result<()> {
    let topics = ids(&client(api, &["topic", "list"])?, "topics")?;
    assert_eq!(topics, vec![topic.to_string()], "the topic survived");
    let mut held = ids(&client(api, &["guidance", "list"])?, "guidance")?;
    held.sort();
    let mut want = sent.to_vec();
    want.sort();
    assert_eq!(
        held.len(),
        want.len(),
        "acknowledged notices lost in the kill"
    );
    assert_eq!(held, want);
    let status = client(api, &["status"])?;
    assert_eq!(field(&status, "events")?.as_u64(), Some(events));
    assert_eq!(field(&status, "own_events")?.as_u64(), Some(events));
    Ok(())
}

#[test]
fn killed_process_loses_nothing() -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("liandong-crash-")
        .tempdir()?;
    let dir = tmp.path().join("province");
    let (fed_port, api_port) = (free_port()?, free_port()?);
    let api_addr: SocketAddr = format!("127.0.0.1:{api_port}").parse()?;
    let api = format!("http://{api_addr}");
    let log = tmp.path().join("serve.log");

    let out = liandong()
        .arg("init")
        .arg("--dir")
        .arg(&dir)
        .args(["--code", "620000", "--name", "甘肃省政协"])
        .args(["--listen", &format!("127.0.0.1:{fed_port}")])
        .args(["--api-listen", &api_addr.to_string()])
        .output()?;
    check("init", out)?;
    // Its TLS certificate, from a CA of its own (the federation port runs mutual TLS).
    let ca = tmp.path().join("ca");
    check(
        "certs ca",
        liandong()
            .arg("certs")
            .arg("ca")
            .arg("--dir")
            .arg(&ca)
            .output()?,
    )?;
    check(
        "certs issue",
        liandong()
            .args(["certs", "issue", "--code", "620000"])
            .arg("--ca")
            .arg(&ca)
            .arg("--out")
            .arg(&dir)
            .output()?,
    )?;
    let config = dir.join("liandong.toml");
    let token = std::fs::read_to_string(dir.join("api.token"))?;
    let _ = TOKEN.set(token.trim().to_string());

    // Round 1: a topic and 50 notices, then kill -9 the moment the last receipt is in.
    let server = Server::start(&config, api_addr, log.clone())?;
    let receipt = client(
        &api,
        &[
            "topic",
            "create",
            "--title",
            "黄河流域生态保护专题调研",
            "--publish",
        ],
    )?;
    let topic = field(&receipt, "record_id")?
        .as_str()
        .context("id")?
        .to_string();
    let mut sent = Vec::new();
    let last_seq = send_notices(&api, 0, 50, &mut sent)?;
    // The root's own registration (seq 1), the topic, the notices.
    assert_eq!(last_seq, 1 + 1 + 50);
    server.kill()?;

    let server = Server::start(&config, api_addr, log.clone())?;
    assert_all_there(&api, &topic, &sent, last_seq)?;

    // Round 2: the restarted node goes on from where it was, and survives another kill.
    let last_seq = send_notices(&api, 50, 75, &mut sent)?;
    assert_eq!(
        last_seq,
        1 + 1 + 75,
        "the chain continues after the restart"
    );
    server.kill()?;
    let server = Server::start(&config, api_addr, log)?;
    assert_all_there(&api, &topic, &sent, last_seq)?;
    server.kill()?;
    Ok(())
}
