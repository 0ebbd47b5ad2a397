//! The local API's credential and the web console on the same port: no call and no page
//! without the token, and refusals that say where the token is.
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use liandong::api::auth::{ApiToken, AttachToken};
use liandong::fixture::{Federation, Spec};
use liandong::pb::{self, committee_client::CommitteeClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn province() -> Result<Federation> {
    let mut fed = Federation::new(vec![Spec::new("620000", "甘肃省政协", None)])?;
    fed.bring_up(&[]).await?;
    Ok(fed)
}

/// One HTTP/1.1 request; returns (status, headers in lower case, body).
async fn http_get(
    addr: std::net::SocketAddr,
    target: &str,
    cookie: Option<&str>,
) -> Result<(u16, String, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw))
        .await
        .context("the console did not answer within 20 s")??;
    let text = String::from_utf8(raw).context("the answer is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no end of headers in {text:?}"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .context("no status")?
        .parse()
        .context("status")?;
    Ok((status, head.to_lowercase(), body.to_string()))
}

#[tokio::test]
async fn committee_calls_need_the_token() -> Result<()> {
    let mut fed = province().await?;
    let running = fed.running("620000")?;
    let url = running.api_url();

    let mut anonymous = CommitteeClient::connect(url.clone()).await?;
    let err = anonymous
        .status(pb::Empty {})
        .await
        .expect_err("a call without the token is refused");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert!(err.message().contains("token"), "{}", err.message());
    let err = anonymous
        .watch(pb::Empty {})
        .await
        .expect_err("the change stream is refused too");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    let channel = tonic::transport::Endpoint::from_shared(url)?
        .connect()
        .await?;
    let wrong = ApiToken::generate();
    let mut impostor =
        CommitteeClient::with_interceptor(channel.clone(), AttachToken::new(Some(&wrong)));
    let err = impostor
        .list_topics(pb::Empty {})
        .await
        .expect_err("a wrong token is refused");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert!(
        err.message().contains("wrong API token"),
        "{}",
        err.message()
    );

    let mut client =
        CommitteeClient::with_interceptor(channel, AttachToken::new(Some(running.api_token())));
    let status = client.status(pb::Empty {}).await?.into_inner();
    assert_eq!(status.committee, "620000");
    fed.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn the_console_takes_the_token_once_and_then_a_cookie() -> Result<()> {
    let mut fed = province().await?;
    let node = fed.node("620000")?.clone();
    node.create_topic(pb::CreateTopicRequest {
        title: "黄河流域<script>alert(1)</script>专题调研".into(),
        source: "party-government".into(),
        form: "thematic".into(),
        tier: "county-and-above".into(),
        plan_year: 2026,
        publish: true,
        ..Default::default()
    })
    .await?;
    let running = fed.running("620000")?;
    let addr = running.api_addr;
    let token = running.api_token().secret().to_string();

    let (status, head, body) = http_get(addr, "/", None).await?;
    assert_eq!(status, 401, "{head}");
    assert!(
        body.contains("需要访问令牌") && body.contains("?token="),
        "{body}"
    );
    assert!(
        !body.contains("黄河流域"),
        "nothing of the node's data without the token"
    );
    assert!(head.contains("www-authenticate: bearer"));

    let (status, _, body) = http_get(addr, "/?token=0123456789abcdef0123", None).await?;
    assert_eq!(status, 401);
    assert!(body.contains("令牌不正确"));

    let (status, head, _) = http_get(addr, &format!("/?token={token}"), None).await?;
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("\r\nlocation: /\r\n"), "{head}");
    let set_cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .context("no set-cookie")?;
    for attr in ["httponly", "samesite=strict", "path=/"] {
        assert!(set_cookie.contains(attr), "{set_cookie} lacks {attr}");
    }
    let cookie = format!("liandong_620000={token}");

    let (status, head, body) = http_get(addr, "/", Some(&cookie)).await?;
    assert_eq!(status, 200, "{head}");
    for h in [
        "content-type: text/html; charset=utf-8",
        "cache-control: no-store",
        "referrer-policy: no-referrer",
        "frame-ancestors 'none'",
    ] {
        assert!(head.contains(h), "{head} lacks {h}");
    }
    assert!(body.contains("<html lang=\"zh-CN\">") && body.contains("<meta charset=\"utf-8\">"));
    assert!(body.contains("甘肃省政协"));
    assert!(body.contains("黄河流域&lt;script&gt;alert(1)&lt;/script&gt;专题调研"));
    assert!(!body.contains("<script"), "titles are text, never markup");

    let (status, _, _) = http_get(addr, "/", Some("liandong_620000=0123456789abcdef0123")).await?;
    assert_eq!(status, 401, "a wrong cookie is refused");
    let (status, _, _) = http_get(addr, "/favicon.ico", Some(&cookie)).await?;
    assert_eq!(status, 404);
    fed.stop_all().await;
    Ok(())
}

/// The real binary: the CLI finds the token next to --config by itself; with --api alone it
/// has none, and the node's refusal says where the file is.
#[test]
fn the_cli_reads_the_token_file_and_explains_a_refusal() -> Result<()> {
    use std::process::{Command, Stdio};
    const BIN: &str = env!("CARGO_BIN_EXE_liandong");
    let free = || -> Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let cmd = || {
        let mut c = Command::new(BIN);
        for v in [
            "LIANDONG_CONFIG",
            "LIANDONG_API",
            "LIANDONG_TOKEN",
            "LIANDONG_LISTEN",
            "LIANDONG_API_LISTEN",
        ] {
            c.env_remove(v);
        }
        c.stdin(Stdio::null());
        c
    };
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("province");
    let api = format!("127.0.0.1:{}", free()?);
    let out = cmd()
        .arg("init")
        .arg("--dir")
        .arg(&dir)
        .args(["--code", "620000", "--name", "甘肃省政协"])
        .args(["--listen", &format!("127.0.0.1:{}", free()?)])
        .args(["--api-listen", &api])
        .output()?;
    ensure!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token_file = dir.join("api.token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is private");
    }
    let config = dir.join("liandong.toml");
    let log = std::fs::File::create(tmp.path().join("serve.log"))?;
    let mut serve = cmd()
        .arg("--config")
        .arg(&config)
        .args(["serve", "--insecure"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let result = (|| -> Result<()> {
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(&api).is_err() {
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "serve did not open {api}: {}",
                std::fs::read_to_string(tmp.path().join("serve.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let ok = cmd()
            .arg("--config")
            .arg(&config)
            .args(["status", "--json"])
            .output()?;
        ensure!(
            ok.status.success(),
            "status with --config: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let refused = cmd()
            .current_dir(tmp.path())
            .args(["--api", &format!("http://{api}"), "status"])
            .output()?;
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(
            err.contains("needs its token") && err.contains("api.token"),
            "{err}"
        );
        let with_env = cmd()
            .current_dir(tmp.path())
            .args(["--api", &format!("http://{api}"), "status", "--json"])
            .env(
                "LIANDONG_TOKEN",
                std::fs::read_to_string(&token_file)?.trim(),
            )
            .output()?;
        ensure!(
            with_env.status.success(),
            "status with LIANDONG_TOKEN: {}",
            String::from_utf8_lossy(&with_env.stderr)
        );
        Ok(())
    })();
    let _ = serve.kill();
    let _ = serve.wait();
    result
}

/// `Watch` streams every change as it becomes durable: a local write at once, and an event
/// that arrives from a child over the link.
#[tokio::test]
async fn watch_streams_local_writes_and_synced_events() -> Result<()> {
    let mut fed = Federation::new(vec![
        Spec::new("620000", "甘肃省政协", None),
        Spec::new("620100", "兰州市政协", Some("620000")),
    ])?;
    fed.bring_up(&[]).await?;
    let running = fed.running("620000")?;
    let channel = tonic::transport::Endpoint::from_shared(running.api_url())?
        .connect()
        .await?;
    let mut client =
        CommitteeClient::with_interceptor(channel, AttachToken::new(Some(running.api_token())));
    let mut changes = client.watch(pb::Empty {}).await?.into_inner();

    let topic = fed
        .node("620000")?
        .create_topic(pb::CreateTopicRequest {
            title: "黄河流域生态保护专题调研".into(),
            publish: true,
            ..Default::default()
        })
        .await?;
    let c = next_change(&mut changes).await?;
    assert_eq!(
        (c.origin.as_str(), c.kind.as_str(), c.record_id.as_str()),
        ("620000", "topic_published", topic.record_id.as_str())
    );
    assert_eq!(c.event_id, topic.event_id);

    let report = fed
        .node("620100")?
        .send_report("620000", "public-opinion", "社情民意信息", "……")
        .await?;
    // Skip anything else the link brings (none expected, but the stream promises only order).
    let mut seen = Vec::new();
    loop {
        let c = next_change(&mut changes).await?;
        seen.push(format!("{} {} {}", c.origin, c.seq, c.kind));
        if c.event_id == report.event_id {
            assert_eq!(
                (c.origin.as_str(), c.kind.as_str()),
                ("620100", "report_sent")
            );
            assert!(c.position > 0);
            break;
        }
        ensure!(seen.len() < 20, "the report never came: {seen:?}");
    }
    fed.stop_all().await;
    Ok(())
}

async fn next_change(changes: &mut tonic::Streaming<pb::Change>) -> Result<pb::Change> {
    tokio::time::timeout(Duration::from_secs(20), changes.message())
        .await
        .context("no change within 20 s")?
        .context("the stream failed")?
        .context("the stream ended")
}
