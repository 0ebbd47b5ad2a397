//! The node as the IT staff run it, with the real binary: `liandong serve` stops cleanly on
//! SIGTERM (exit 0 within seconds) and comes back with everything; its metrics endpoint
//! answers; `export`, `verify` and `import` move a stopped node's data to a new machine.
#![cfg(unix)]

#[path = "common/process.rs"]
mod process;
use process::{check, free_port, liandong};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// `liandong --config <config> --json <args>`, parsed.
fn offline(config: &Path, args: &[&str]) -> Result<Value> {
    let out = liandong()
        .arg("--config")
        .arg(config)
        .arg("--json")
        .args(args)
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

/// A client command against the running node of `config` (its API address and token).
fn client(config: &Path, args: &[&str]) -> Result<Value> {
    let out = liandong()
        .arg("--config")
        .arg(config)
        .arg("--json")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    let out = check(&args.join(" "), out)?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// A `liandong serve` process, killed if the test fails before it stops it.
struct Server {
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    fn start(config: &Path, api: SocketAddr, metrics: &str, log: PathBuf) -> Result<Server> {
        Server::start_with(config, api, metrics, log, &[])
    }

    /// [`Server::start`] with global flags before the subcommand (e.g. `--log-json`).
    fn start_with(
        config: &Path,
        api: SocketAddr,
        metrics: &str,
        log: PathBuf,
        global: &[&str],
    ) -> Result<Server> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = liandong()
            .args(global)
            .arg("--config")
            .arg(config)
            .args(["serve", "--insecure", "--metrics-listen", metrics])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("spawning liandong serve")?;
        let mut server = Server {
            child: Some(child),
            log,
        };
        let start = Instant::now();
        loop {
            if let Some(c) = server.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!(
                        "liandong serve exited with {status}:\n{}",
                        server.log_text()
                    );
                }
            }
            if TcpStream::connect_timeout(&api, Duration::from_millis(200)).is_ok() {
                return Ok(server);
            }
            if start.elapsed() > WAIT {
                bail!("liandong serve did not open {api}:\n{}", server.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as systemd sends it; the process must exit 0 within `limit`.
    fn terminate(mut self, limit: Duration) -> Result<Duration> {
        let mut child = self.child.take().context("already stopped")?;
        let started = Instant::now();
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        ensure!(kill.success(), "kill -TERM failed");
        loop {
            if let Some(status) = child.try_wait()? {
                let took = started.elapsed();
                ensure!(
                    status.success(),
                    "serve exited with {status} on SIGTERM:\n{}",
                    self.log_text()
                );
                return Ok(took);
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "serve did not exit within {limit:?} of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// GET /metrics over plain HTTP/1.1.
fn scrape(addr: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    ensure!(body.starts_with("HTTP/1.1 200"), "metrics answered: {body}");
    Ok(body)
}

/// The value of an unlabelled metric in a scrape.
fn metric(scraped: &str, name: &str) -> Option<f64> {
    scraped
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn send_notices(api: &Path, n: usize) -> Result<()> {
    for i in 0..n {
        client(
            api,
            &[
                "guidance",
                "send",
                "--title",
                &format!("第{i}号通知"),
                "--body",
                "请按时报送调研成果。",
            ],
        )?;
    }
    Ok(())
}

fn events(api: &Path) -> Result<u64> {
    client(api, &["status"])?
        .get("events")
        .and_then(Value::as_u64)
        .context("status has events")
}

#[test]
fn sigterm_stops_cleanly_and_a_backup_moves_the_node() -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("liandong-lifecycle-")
        .tempdir()?;
    let dir = tmp.path().join("province");
    let (fed_port, api_port, metrics_port) = (free_port()?, free_port()?, free_port()?);
    let api_addr: SocketAddr = format!("127.0.0.1:{api_port}").parse()?;
    let metrics = format!("127.0.0.1:{metrics_port}");
    let log = tmp.path().join("serve.log");
    check(
        "init",
        liandong()
            .arg("init")
            .arg("--dir")
            .arg(&dir)
            .args(["--code", "620000", "--name", "甘肃省政协"])
            .args(["--listen", &format!("127.0.0.1:{fed_port}")])
            .args(["--api-listen", &api_addr.to_string()])
            .output()?,
    )?;
    let config = dir.join("liandong.toml");

    // Serve, write, scrape, SIGTERM.
    let server = Server::start(&config, api_addr, &metrics, log.clone())?;
    client(
        &config,
        &[
            "topic",
            "create",
            "--title",
            "黄河流域生态保护专题调研",
            "--publish",
        ],
    )?;
    send_notices(&config, 20)?;
    let held = events(&config)?;
    assert_eq!(held, 1 + 1 + 20, "registration, topic, notices");
    let deadline = Instant::now() + WAIT;
    loop {
        let scraped = scrape(&metrics)?;
        let ok = metric(&scraped, "liandong_events_held") == Some(held as f64)
            && metric(&scraped, "liandong_events_authored_total") == Some(21.0)
            && scraped.contains("liandong_store_sync_seconds_bucket")
            && scraped.contains("liandong_group_commit_jobs_bucket")
            && metric(&scraped, "liandong_store_size_bytes").is_some_and(|b| b > 0.0)
            && metric(&scraped, "liandong_quarantine_entries") == Some(0.0);
        if ok {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "metrics never showed the node's state:\n{scraped}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let took = server.terminate(Duration::from_secs(5))?;
    eprintln!("serve stopped {took:?} after SIGTERM");
    let text = std::fs::read_to_string(&log)?;
    ensure!(text.contains("stopped cleanly"), "the log says so:\n{text}");

    // Restart: everything is there.
    let server = Server::start(&config, api_addr, "", log.clone())?;
    assert_eq!(events(&config)?, held, "everything survived the SIGTERM");
    send_notices(&config, 5)?;
    let held = held + 5;
    server.terminate(Duration::from_secs(5))?;

    // Offline: verify, export.
    let v = offline(&config, &["verify"])?;
    assert_eq!(v["ok"], Value::Bool(true), "{v}");
    assert_eq!(v["events"].as_u64(), Some(held));
    let file = tmp.path().join("province.ldx");
    let e = offline(
        &config,
        &["export", "--out", file.to_str().context("utf-8 path")?],
    )?;
    assert_eq!(e["events"].as_u64(), Some(held));

    // A new machine: the config and the key (kept apart from the export), no store.
    let moved = tmp.path().join("new-pc");
    std::fs::create_dir_all(&moved)?;
    for f in ["liandong.toml", "node.key"] {
        std::fs::copy(dir.join(f), moved.join(f))?;
    }
    let moved_config = moved.join("liandong.toml");
    let i = offline(
        &moved_config,
        &["import", "--file", file.to_str().context("utf-8 path")?],
    )?;
    assert_eq!(i["stored"].as_u64(), Some(held), "{i}");
    assert_eq!(i["refused"].as_u64(), Some(0), "{i}");
    let v = offline(&moved_config, &["verify"])?;
    assert_eq!(v["ok"], Value::Bool(true), "{v}");

    // The moved node serves what the old one held, and continues its chain.
    let server = Server::start(&moved_config, api_addr, "", tmp.path().join("moved.log"))?;
    assert_eq!(events(&moved_config)?, held);
    let r = client(
        &moved_config,
        &["guidance", "send", "--title", "搬迁后的通知"],
    )?;
    assert_eq!(r["seq"].as_u64(), Some(held + 1), "the chain goes on: {r}");
    server.terminate(Duration::from_secs(5))?;

    // verify on a running node's store says what to do; a damaged store fails verify.
    let server = Server::start(&moved_config, api_addr, "", tmp.path().join("moved.log"))?;
    let out = liandong()
        .arg("--config")
        .arg(&moved_config)
        .arg("verify")
        .output()?;
    ensure!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("stop `liandong serve` first"), "{err}");
    server.terminate(Duration::from_secs(5))?;
    Ok(())
}

/// The value of `name{labels…}` in a scrape, whatever the order of its labels.
fn labelled(scraped: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scraped
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn init_json(args: &[&str]) -> Result<Value> {
    let out = check(
        "init",
        liandong().args(["--json", "init"]).args(args).output()?,
    )?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Polls `metrics` until `done` holds for a scrape.
fn wait_scrape(metrics: &str, what: &str, done: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let scraped = scrape(metrics)?;
        if done(&scraped) {
            return Ok(scraped);
        }
        ensure!(
            Instant::now() < deadline,
            "metrics never showed {what}:\n{scraped}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn link_metrics_follow_a_child_coming_and_going() -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("liandong-link-metrics-")
        .tempdir()?;
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect::<Result<_>>()?;
    let (p_fed, p_api, p_metrics) = (ports[0], ports[1], format!("127.0.0.1:{}", ports[2]));
    let (c_fed, c_api, c_metrics) = (ports[3], ports[4], format!("127.0.0.1:{}", ports[5]));
    let province = tmp.path().join("620000");
    let city = tmp.path().join("620100");
    let p = init_json(&[
        "--dir",
        province.to_str().context("utf-8")?,
        "--code",
        "620000",
        "--name",
        "甘肃省政协",
        "--listen",
        &format!("127.0.0.1:{p_fed}"),
        "--api-listen",
        &format!("127.0.0.1:{p_api}"),
    ])?;
    let root_key = p["public_key"].as_str().context("root key")?.to_string();
    let c = init_json(&[
        "--dir",
        city.to_str().context("utf-8")?,
        "--code",
        "620100",
        "--name",
        "兰州市政协",
        "--parent-code",
        "620000",
        "--parent-address",
        &format!("http://127.0.0.1:{p_fed}"),
        "--root-code",
        "620000",
        "--root-key",
        &root_key,
        "--listen",
        &format!("127.0.0.1:{c_fed}"),
        "--api-listen",
        &format!("127.0.0.1:{c_api}"),
    ])?;
    let city_key = c["public_key"].as_str().context("city key")?.to_string();
    let (p_config, c_config) = (province.join("liandong.toml"), city.join("liandong.toml"));

    let p_server = Server::start(
        &p_config,
        format!("127.0.0.1:{p_api}").parse()?,
        &p_metrics,
        tmp.path().join("province.log"),
    )?;
    client(
        &p_config,
        &[
            "committee",
            "register",
            "--code",
            "620100",
            "--name",
            "兰州市政协",
            "--key",
            &city_key,
        ],
    )?;
    // Registered but never connected: the province shows the link down, not absent.
    wait_scrape(&p_metrics, "the registered city's link down", |s| {
        labelled(
            s,
            "liandong_link_up",
            &[("peer", "620100"), ("role", "child")],
        ) == Some(0.0)
    })?;

    let c_server = Server::start(
        &c_config,
        format!("127.0.0.1:{c_api}").parse()?,
        &c_metrics,
        tmp.path().join("city.log"),
    )?;
    client(
        &p_config,
        &[
            "topic",
            "create",
            "--title",
            "黄河流域生态保护专题调研",
            "--publish",
        ],
    )?;
    let held = events(&p_config)?;
    let scraped = wait_scrape(&p_metrics, "the city connected and caught up", |s| {
        let child = [("peer", "620100")];
        labelled(
            s,
            "liandong_link_up",
            &[("peer", "620100"), ("role", "child")],
        ) == Some(1.0)
            && labelled(
                s,
                "liandong_link_lag_events",
                &[child[0], ("direction", "outbound")],
            ) == Some(0.0)
            && labelled(s, "liandong_sync_batches_sent_total", &child).is_some_and(|n| n > 0.0)
            && labelled(s, "liandong_sync_bytes_sent_total", &child).is_some_and(|n| n > 0.0)
            && labelled(s, "liandong_sync_batch_ack_seconds_count", &child).is_some_and(|n| n > 0.0)
    })?;
    ensure!(
        labelled(
            &scraped,
            "liandong_link_lag_seconds",
            &[("peer", "620100"), ("direction", "outbound")]
        ) == Some(0.0),
        "caught up, so no lag in seconds:\n{scraped}"
    );
    wait_scrape(&c_metrics, "the city holding the province's events", |s| {
        labelled(
            s,
            "liandong_link_up",
            &[("peer", "620000"), ("role", "parent")],
        ) == Some(1.0)
            && labelled(
                s,
                "liandong_events_ingested_total",
                &[("outcome", "stored")],
            )
            .is_some_and(|n| n >= held as f64)
            && metric(s, "liandong_events_held") == Some(held as f64)
            && labelled(
                s,
                "liandong_sync_bytes_received_total",
                &[("peer", "620000")],
            )
            .is_some_and(|n| n > 0.0)
    })?;

    // The city stops: the province sees the link go down and counts the disconnect.
    c_server.terminate(Duration::from_secs(5))?;
    wait_scrape(&p_metrics, "the city's link down after it stopped", |s| {
        labelled(
            s,
            "liandong_link_up",
            &[("peer", "620100"), ("role", "child")],
        ) == Some(0.0)
            && labelled(s, "liandong_link_disconnects_total", &[("peer", "620100")])
                .is_some_and(|n| n >= 1.0)
    })?;

    // While the city is down the province writes 600 notices; when the city starts again it
    // shows its catch-up (plain log lines here, a bar on a terminal) until it holds them all.
    let token = std::fs::read_to_string(province.join("api.token"))?;
    tokio::runtime::Runtime::new()?.block_on(async {
        use liandong::api::auth::{ApiToken, AttachToken};
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{p_api}"))?
            .connect()
            .await?;
        let token = ApiToken::parse(token.trim()).map_err(anyhow::Error::msg)?;
        let mut api = liandong::pb::committee_client::CommitteeClient::with_interceptor(
            channel,
            AttachToken::new(Some(&token)),
        );
        for i in 0..600 {
            api.send_guidance(liandong::pb::SendGuidanceRequest {
                title: format!("第{i}号通知"),
                body: "请按时报送调研成果。".into(),
                ..Default::default()
            })
            .await?;
        }
        anyhow::Ok(())
    })?;
    let held = events(&p_config)?;
    let city_log = tmp.path().join("city.log");
    let c_server = Server::start(
        &c_config,
        format!("127.0.0.1:{c_api}").parse()?,
        &c_metrics,
        city_log.clone(),
    )?;
    let deadline = Instant::now() + WAIT;
    loop {
        let log = std::fs::read_to_string(&city_log)?;
        if let Some(done) = log.lines().find(|l| l.contains(" caught up ")) {
            let started = log
                .lines()
                .find(|l| l.contains(" catching up "))
                .with_context(|| format!("the catch-up was not announced:\n{log}"))?;
            ensure!(started.contains("peer=620000"), "{started}");
            ensure!(done.contains("peer=620000"), "{done}");
            ensure!(done.contains("positions=6"), "about 600 positions: {done}");
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the city never reported its catch-up:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ensure!(
        events(&c_config)? >= held,
        "caught up means holding what the province held"
    );
    c_server.terminate(Duration::from_secs(5))?;
    p_server.terminate(Duration::from_secs(5))?;
    Ok(())
}

/// `--log-json`: every line the node logs is one JSON object with a level, a target and the
/// message, so that a log shipper can read it; `RUST_LOG` still sets the level.
#[test]
fn log_json_writes_one_json_object_per_line() -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("liandong-logjson-")
        .tempdir()?;
    let dir = tmp.path().join("province");
    let (fed_port, api_port, metrics_port) = (free_port()?, free_port()?, free_port()?);
    let api_addr: SocketAddr = format!("127.0.0.1:{api_port}").parse()?;
    check(
        "init",
        liandong()
            .arg("init")
            .arg("--dir")
            .arg(&dir)
            .args(["--code", "620000", "--name", "甘肃省政协"])
            .args(["--listen", &format!("127.0.0.1:{fed_port}")])
            .args(["--api-listen", &api_addr.to_string()])
            .output()?,
    )?;
    let config = dir.join("liandong.toml");
    let log = tmp.path().join("serve.log");
    let server = Server::start_with(
        &config,
        api_addr,
        &format!("127.0.0.1:{metrics_port}"),
        log.clone(),
        &["--log-json"],
    )?;
    server.terminate(Duration::from_secs(10))?;
    let text = std::fs::read_to_string(&log)?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    ensure!(
        lines.len() >= 2,
        "expected start and stop lines, got:\n{text}"
    );
    let mut messages = Vec::new();
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("a log line that is not JSON: {line}"))?;
        ensure!(v["level"].is_string(), "no level in {line}");
        ensure!(v["target"].is_string(), "no target in {line}");
        messages.push(v["fields"]["message"].as_str().unwrap_or("").to_string());
    }
    ensure!(
        messages.iter().any(|m| !m.is_empty()),
        "no message in any line: {lines:?}"
    );
    Ok(())
}
