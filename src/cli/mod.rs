//! The `liandong` command line: `init` and `serve` run a node; the other commands are clients
//! of the local node's `Committee` API. Every read command takes `--json`.
pub mod backup;
pub mod certs;
pub mod cycle;
pub mod group;
pub mod init;
pub mod print;
pub mod progress;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use sha2::Digest;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::api::auth::{ApiToken, AttachToken};
use crate::config::Config;
use crate::pb::{self, committee_client::CommitteeClient};

#[derive(Parser, Debug)]
#[command(
    name = "liandong",
    version,
    about = "联动: multi-level federation sync for CPPCC linked consultation (联动协商)"
)]
pub struct Cli {
    /// The node's config file.
    #[arg(
        long,
        global = true,
        env = "LIANDONG_CONFIG",
        default_value = "liandong.toml"
    )]
    pub config: PathBuf,
    /// The local node's API address (overrides the config's api_listen), e.g. http://127.0.0.1:7401.
    #[arg(long, global = true, env = "LIANDONG_API")]
    pub api: Option<String>,
    /// The local API's token (default: read from the node's [node] api_token_file, next to
    /// --config). Prefer LIANDONG_TOKEN to the flag: other users can see command lines.
    #[arg(long, global = true, env = "LIANDONG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log as JSON lines (for log collectors); the level comes from RUST_LOG.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// Give up on the local node after this many seconds (not for `watch`).
    #[arg(long, global = true, default_value_t = 30)]
    pub timeout: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a node's folder: key pair, config file and store. Prints the public key.
    Init(init::InitArgs),
    /// Run the node.
    Serve(init::ServeArgs),
    /// TLS between nodes: create the federation's CA, issue a node's certificate.
    #[command(subcommand)]
    Certs(certs::CertsCmd),
    /// Run a whole federation in this process (Gansu: a province, two cities, four counties).
    Demo(crate::demo::DemoArgs),
    /// The performance suite: relay, catch-up, fan-out, scope, footprint, national scale,
    /// and this machine's limits (`--quick`: small sizes, for CI).
    Bench(crate::bench::BenchArgs),
    /// 名册: register a child committee, list the roster.
    #[command(subcommand)]
    Committee(CommitteeCmd),
    /// 议题: create, publish, conclude, withdraw, show, list.
    #[command(subcommand)]
    Topic(TopicCmd),
    /// Issue an assignment (分课题), or a sub-assignment (子课题) under one's own assignment.
    Assign(AssignArgs),
    /// Cancel an assignment this committee issued.
    Cancel {
        assignment: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// What is assigned to this committee.
    Tasks,
    /// 签收: acknowledge an assignment.
    Ack { assignment: String },
    /// Submit a result (成果) for an assignment.
    Submit(SubmitArgs),
    /// 审核: approve (通过) or return (退回) the latest submission.
    Review(ReviewArgs),
    /// 指导意见: send, list, acknowledge.
    #[command(subcommand)]
    Guidance(GuidanceCmd),
    /// 报送: send upward, list, acknowledge.
    #[command(subcommand)]
    Report(ReportCmd),
    /// This node: committee, links and lag, counts.
    Status,
    /// What was refused and why.
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
    /// This node's own keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Print changes as they happen.
    Watch,
    /// Write a stopped node's events to a portable file (backup, moving to a new machine).
    Export(backup::ExportArgs),
    /// Read an export file into a stopped node, verifying every event again.
    Import(backup::ImportArgs),
    /// Check a stopped node's store end to end: signatures, chains, indexes, derived state.
    Verify,
    /// 协作组 and 联席会议: lateral groups of provinces (charter, list), their joint meetings,
    /// and the members' roll-ups of their shares. On a federation's root node.
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// The consultation cycle: proposal, plan, meeting, rec, reconsult, evaluation,
    /// publication, overdue.
    #[command(flatten)]
    Cycle(cycle::CycleCmd),
}

#[derive(Subcommand, Debug)]
pub enum CommitteeCmd {
    /// Register a child committee and its public key (run on the parent's node).
    Register {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        /// The child's public key, as its `liandong init` printed it.
        #[arg(long)]
        key: String,
    },
    /// The roster as this node knows it.
    List,
    /// Give a child a new key (run on the parent's node), e.g. after `liandong key new` on
    /// the child, or for a replacement machine.
    RotateKey {
        #[arg(long)]
        code: String,
        /// The child's new public key (64 hex digits).
        #[arg(long)]
        key: String,
    },
    /// Revoke a child's key (a compromised machine): its events after the furthest point this
    /// node knows its chain reached become void everywhere, and it cannot write until given a
    /// new key (`rotate-key`).
    RevokeKey {
        #[arg(long)]
        code: String,
        #[arg(long)]
        reason: String,
        /// The child's last sequence number that stays valid (default: the furthest this node
        /// knows of; earlier if you know when the machine was lost).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        valid_through: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum TopicCmd {
    /// Draft a topic (or publish it at once with --publish).
    Create {
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        description: String,
        /// party-government (党政点题) | members (委员征题) | committee (政协选题)
        #[arg(long, default_value = "committee")]
        source: String,
        /// thematic | counterpart | sector | proposal-handling
        #[arg(long, default_value = "thematic")]
        form: String,
        /// county-and-above | grassroots
        #[arg(long, default_value = "county-and-above")]
        tier: String,
        /// Plan year (计划年度); this year (China Standard Time) when omitted.
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        year: u32,
        #[arg(long)]
        publish: bool,
    },
    /// Publish a draft to this committee's subtree.
    Publish { topic: String },
    /// Conclude a published topic.
    Conclude {
        topic: String,
        #[arg(long, default_value = "")]
        summary: String,
    },
    /// Withdraw a topic.
    Withdraw {
        topic: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// A topic's progress tree: assignments, sub-assignments, acknowledgements, reviews.
    Show { topic: String },
    /// Every topic held here.
    List,
}

#[derive(Args, Debug)]
pub struct AssignArgs {
    /// The topic (for a top-level assignment of one's own topic).
    #[arg(long, required_unless_present = "parent")]
    pub topic: Option<String>,
    /// One's own assignment to split (for a 子课题).
    #[arg(long)]
    pub parent: Option<String>,
    /// The assignee's committee code.
    #[arg(long)]
    pub to: String,
    #[arg(long)]
    pub title: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// Due date, YYYY-MM-DD.
    #[arg(long)]
    pub due: String,
    #[arg(long, default_value_t = 1)]
    pub weight: u32,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    pub assignment: String,
    /// The report text.
    #[arg(long, conflicts_with = "file")]
    pub text: Option<String>,
    /// Read the report text from a file.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// A recommendation (建议); repeat for several.
    #[arg(long = "rec")]
    pub recommendations: Vec<String>,
    /// An attachment: its SHA-256 is recorded (the file itself travels outside liandong).
    #[arg(long = "attach")]
    pub attachments: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ReviewArgs {
    pub assignment: String,
    #[arg(long, conflicts_with = "return_it")]
    pub approve: bool,
    #[arg(long = "return")]
    pub return_it: bool,
    #[arg(long, default_value = "")]
    pub comment: String,
}

#[derive(Subcommand, Debug)]
pub enum GuidanceCmd {
    /// Send guidance down: to the whole subtree, or to the committees named with --to.
    Send {
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        body: String,
        #[arg(long)]
        to: Vec<String>,
    },
    List,
    Ack {
        guidance: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Send a report up to an ancestor (the parent by default).
    Send {
        #[arg(long, default_value = "")]
        to: String,
        /// public-opinion (社情民意信息) | proposal (提案) | work-summary (工作总结)
        #[arg(long, default_value = "public-opinion")]
        kind: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        body: String,
    },
    List,
    Ack {
        report: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCmd {
    /// Every refused event, with its reason.
    List,
    /// One entry in full: the frame as received and what it decodes to.
    Show { id: String },
}

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Make a new key for this node (node.key.next beside the config) and print what the
    /// parent must run to switch to it. The node keeps signing with the old key until the
    /// parent's rotation arrives, then uses the new one.
    New,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Init(args) => return init::init(args, &cli).await,
        Command::Key(KeyCmd::New) => return init::new_key(&cli),
        Command::Serve(args) => return init::serve(args, &cli).await,
        Command::Demo(args) => return crate::demo::run(args, cli.json).await,
        Command::Bench(args) => return Ok(crate::bench::run(args.clone(), cli.json).await?),
        Command::Certs(cmd) => return certs::run(cmd, &cli),
        Command::Export(args) => return backup::export(args, &cli).await,
        Command::Import(args) => return backup::import(args, &cli).await,
        Command::Verify => return backup::verify(&cli).await,
        _ => {}
    }
    let mut c = connect(&cli).await?;
    let json = cli.json;
    match cli.command {
        Command::Init(_)
        | Command::Serve(_)
        | Command::Demo(_)
        | Command::Bench(_)
        | Command::Certs(_)
        | Command::Key(_)
        | Command::Export(_)
        | Command::Import(_)
        | Command::Verify => unreachable!("handled above"),
        Command::Committee(CommitteeCmd::RotateKey { code, key }) => {
            let r = c
                .rotate_key(pb::RotateKeyRequest {
                    code,
                    public_key: key,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("key rotated", r))
        }
        Command::Committee(CommitteeCmd::RevokeKey {
            code,
            reason,
            valid_through,
        }) => {
            let r = c
                .revoke_key(pb::RevokeKeyRequest {
                    code,
                    reason,
                    valid_through_seq: valid_through,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("key revoked", r))
        }
        Command::Quarantine(QuarantineCmd::Show { id }) => emit(
            json,
            &c.show_quarantine(pb::QuarantineRef { id })
                .await?
                .into_inner(),
            print::quarantine_entry,
        ),
        Command::Committee(CommitteeCmd::Register { code, name, key }) => {
            let r = c
                .register_committee(pb::RegisterCommitteeRequest {
                    code,
                    name,
                    public_key: key,
                })
                .await?;
            emit(json, &r.into_inner(), |r| print::receipt("registered", r))
        }
        Command::Committee(CommitteeCmd::List) => emit(
            json,
            &c.list_committees(pb::Empty {}).await?.into_inner(),
            print::committees,
        ),
        Command::Topic(TopicCmd::Create {
            title,
            description,
            source,
            form,
            tier,
            year,
            publish,
        }) => {
            let req = pb::CreateTopicRequest {
                title,
                description,
                source,
                form,
                tier,
                plan_year: year,
                publish,
            };
            let r = c.create_topic(req).await?.into_inner();
            emit(json, &r, |r| {
                print::receipt(
                    if publish {
                        "topic published"
                    } else {
                        "topic drafted"
                    },
                    r,
                )
            })
        }
        Command::Topic(TopicCmd::Publish { topic }) => {
            let r = c
                .publish_topic(pb::TopicRef { topic_id: topic })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("topic published", r))
        }
        Command::Topic(TopicCmd::Conclude { topic, summary }) => {
            let r = c
                .conclude_topic(pb::CloseTopicRequest {
                    topic_id: topic,
                    text: summary,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("topic concluded", r))
        }
        Command::Topic(TopicCmd::Withdraw { topic, reason }) => {
            let r = c
                .withdraw_topic(pb::CloseTopicRequest {
                    topic_id: topic,
                    text: reason,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("topic withdrawn", r))
        }
        Command::Topic(TopicCmd::Show { topic }) => cycle::show_topic(&mut c, topic, json).await,
        Command::Cycle(cmd) => cycle::run(cmd, &mut c, json).await,
        Command::Topic(TopicCmd::List) => emit(
            json,
            &c.list_topics(pb::Empty {}).await?.into_inner(),
            print::topics,
        ),
        Command::Assign(a) => {
            let req = pb::AssignRequest {
                topic_id: a.topic.unwrap_or_default(),
                parent_assignment_id: a.parent.unwrap_or_default(),
                assignee: a.to,
                title: a.title,
                description: a.description,
                due_date: a.due,
                weight: a.weight,
            };
            let r = c.assign(req).await?.into_inner();
            emit(json, &r, |r| print::receipt("assigned", r))
        }
        Command::Cancel { assignment, reason } => {
            let r = c
                .cancel_assignment(pb::CancelAssignmentRequest {
                    assignment_id: assignment,
                    reason,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("cancelled", r))
        }
        Command::Tasks => emit(
            json,
            &c.list_tasks(pb::Empty {}).await?.into_inner(),
            print::tasks,
        ),
        Command::Ack { assignment } => {
            let r = c
                .acknowledge(pb::AssignmentRef {
                    assignment_id: assignment,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("acknowledged (已签收)", r))
        }
        Command::Submit(s) => {
            let text = match (s.text, s.file) {
                (Some(t), _) => t,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading the report from {}", f.display()))?,
                (None, None) => bail!("give the result with --text \"...\" or --file report.txt"),
            };
            let mut digests = Vec::new();
            for a in &s.attachments {
                let bytes = std::fs::read(a)
                    .with_context(|| format!("reading attachment {}", a.display()))?;
                digests.push(hex::encode(sha2::Sha256::digest(&bytes)));
            }
            let req = pb::SubmitRequest {
                assignment_id: s.assignment,
                text,
                recommendations: s.recommendations,
                attachment_digests: digests,
            };
            let r = c.submit(req).await?.into_inner();
            emit(json, &r, |r| print::receipt("submitted", r))
        }
        Command::Review(r) => {
            let verdict = match (r.approve, r.return_it) {
                (true, false) => "approve",
                (false, true) => "return",
                _ => bail!("say --approve (通过) or --return (退回) with --comment \"why\""),
            };
            let req = pb::ReviewRequest {
                assignment_id: r.assignment,
                verdict: verdict.into(),
                comment: r.comment,
            };
            let out = c.review(req).await?.into_inner();
            emit(json, &out, |o| print::receipt("reviewed", o))
        }
        Command::Guidance(GuidanceCmd::Send { title, body, to }) => {
            let r = c
                .send_guidance(pb::SendGuidanceRequest { title, body, to })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("guidance sent", r))
        }
        Command::Guidance(GuidanceCmd::List) => emit(
            json,
            &c.list_guidance(pb::Empty {}).await?.into_inner(),
            print::guidance,
        ),
        Command::Guidance(GuidanceCmd::Ack { guidance }) => {
            let r = c
                .acknowledge_guidance(pb::GuidanceRef {
                    guidance_id: guidance,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("acknowledged (已签收)", r))
        }
        Command::Report(ReportCmd::Send {
            to,
            kind,
            title,
            body,
        }) => {
            let r = c
                .send_report(pb::SendReportRequest {
                    to,
                    kind,
                    title,
                    body,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("report sent", r))
        }
        Command::Report(ReportCmd::List) => emit(
            json,
            &c.list_reports(pb::Empty {}).await?.into_inner(),
            print::reports,
        ),
        Command::Report(ReportCmd::Ack { report }) => {
            let r = c
                .acknowledge_report(pb::ReportRef { report_id: report })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("acknowledged", r))
        }
        Command::Status => emit(
            json,
            &c.status(pb::Empty {}).await?.into_inner(),
            print::status,
        ),
        Command::Quarantine(QuarantineCmd::List) => emit(
            json,
            &c.list_quarantine(pb::Empty {}).await?.into_inner(),
            print::quarantine,
        ),
        Command::Group(cmd) => group::run(cmd, &mut c, json).await,
        Command::Watch => {
            let mut stream = c.watch(pb::Empty {}).await?.into_inner();
            while let Some(change) = stream.message().await? {
                if json {
                    println!("{}", serde_json::to_string(&change)?);
                } else {
                    println!(
                        "{:>6}  {}  {}#{}  {}",
                        change.position, change.kind, change.origin, change.seq, change.record_id
                    );
                }
            }
            Ok(())
        }
    }
}

fn emit<T: Serialize>(json: bool, value: &T, human: impl Fn(&T) -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", human(value));
    }
    Ok(())
}

/// A client of the local API that sends the node's token with every call.
pub type LocalClient = CommitteeClient<InterceptedService<Channel, AttachToken>>;

/// The token file named by a loaded config.
fn token_file(cfg: &Config, base: &std::path::Path) -> PathBuf {
    let p = &cfg.node.api_token_file;
    if p.is_absolute() {
        p.clone()
    } else {
        base.join(p)
    }
}

async fn connect(cli: &Cli) -> Result<LocalClient> {
    let (url, file) = match &cli.api {
        // With --api the config is optional: its token file is used when it loads.
        Some(u) => {
            let file = match (&cli.token, cli.config.exists()) {
                (None, true) => Config::load(&cli.config)
                    .ok()
                    .map(|(cfg, base)| token_file(&cfg, &base)),
                _ => None,
            };
            (u.clone(), file)
        }
        None => {
            let (cfg, base) = Config::load(&cli.config).map_err(|e| {
                anyhow::anyhow!(
                    "{e}\n(or give the node's API address with --api http://127.0.0.1:7401 and its token with LIANDONG_TOKEN)"
                )
            })?;
            (
                format!("http://{}", cfg.node.api_listen),
                Some(token_file(&cfg, &base)),
            )
        }
    };
    let token = match (&cli.token, file) {
        (Some(t), _) => {
            Some(ApiToken::parse(t).map_err(|e| anyhow::anyhow!("--token / LIANDONG_TOKEN: {e}"))?)
        }
        (None, Some(path)) => Some(ApiToken::read(&path)?),
        // The node answers with where its token is.
        (None, None) => None,
    };
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .with_context(|| format!("'{url}' is not an address like http://127.0.0.1:7401"))?
        .connect_timeout(std::time::Duration::from_secs(cli.timeout.clamp(1, 10)));
    if !matches!(cli.command, Command::Watch) {
        endpoint = endpoint.timeout(std::time::Duration::from_secs(cli.timeout.max(1)));
    }
    let channel = endpoint.connect().await.with_context(|| {
        format!("cannot reach the local node at {url}: is `liandong serve` running?")
    })?;
    Ok(CommitteeClient::with_interceptor(
        channel,
        AttachToken::new(token.as_ref()),
    ))
}
