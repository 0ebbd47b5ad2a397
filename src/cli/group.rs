//! `liandong group ...`: lateral groups (协作组), their charters and joint meetings (联席会议).
//! Run on a federation's root node; every read command takes `--json`.
use std::fmt::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use super::{emit, print, LocalClient};
use crate::pb;

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// 章程: propose a charter version, endorse one.
    #[command(subcommand)]
    Charter(CharterCmd),
    /// The lateral groups this node knows: members, hosts, charter versions and endorsements.
    List,
    /// 联席会议: convene, contribute, draft, comment, finalize, send, show, list.
    #[command(subcommand)]
    Meeting(MeetingCmd),
    /// Publish this member's roll-up of its share of a joint meeting's topic (computed from
    /// its own topic's assignments, recommendations and re-consultation rounds).
    Rollup {
        meeting: String,
        /// This committee's own topic that carries its share.
        #[arg(long)]
        topic: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CharterCmd {
    /// Propose version 1 (founding) or, when a charter is in force, the next version, which
    /// adds the members and host years given to those in force.
    Propose {
        /// The group id, e.g. yellow-river-9.
        #[arg(long)]
        group: String,
        /// The group's name (for an amendment: empty keeps it).
        #[arg(long, default_value = "")]
        name: String,
        /// A member: CODE=PUBLIC_KEY (the hex key of that federation's root, as its
        /// `liandong init` printed it), or CODE=PUBLIC_KEY=NAME. This node's own committee is
        /// listed with its anchor key anyway. Repeat for each member.
        #[arg(long = "member")]
        members: Vec<String>,
        /// A host term: YEAR=CODE. Repeat for each year.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Take the name and host years of --group from a groups file (such as
        /// shared/data/groups.toml); members' keys still come from --member.
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Endorse (签署) a proposal: compare its members' keys with what their operators gave you
    /// out of band first — your endorsement is your federation's trust in them.
    Endorse {
        #[arg(long)]
        group: String,
        /// The proposal's digest (or a prefix); default: the one awaiting this committee.
        #[arg(long, default_value = "")]
        digest: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MeetingCmd {
    /// Convene the year's joint meeting (only the host the charter names for that year).
    Convene {
        #[arg(long)]
        group: String,
        #[arg(long)]
        year: u32,
        /// The joint topic.
        #[arg(long)]
        theme: String,
        #[arg(long, default_value = "")]
        description: String,
        /// YYYY-MM-DD
        #[arg(long, default_value = "")]
        date: String,
        #[arg(long, default_value = "")]
        place: String,
        /// Also to every committee of every member's tree (default: the members only).
        #[arg(long)]
        subtrees: bool,
    },
    /// A member's research (调研成果) or comment (意见建议).
    Contribute {
        meeting: String,
        #[arg(long)]
        text: String,
        #[arg(long, default_value = "")]
        title: String,
        /// research | comment
        #[arg(long, default_value = "research")]
        kind: String,
        /// A recommendation (建议); repeat for several.
        #[arg(long = "rec")]
        recommendations: Vec<String>,
        /// Revise this committee's own contribution (its id or a prefix/suffix of it).
        #[arg(long, default_value = "")]
        revise: String,
    },
    /// The host drafts (the next version of) the joint report.
    Draft {
        meeting: String,
        #[arg(long)]
        text: String,
        #[arg(long, default_value = "")]
        title: String,
        #[arg(long = "rec")]
        recommendations: Vec<String>,
    },
    /// A member comments on a draft (the latest by default).
    Comment {
        meeting: String,
        #[arg(long, default_value_t = 0)]
        version: u32,
        /// No changes wanted (无修改意见).
        #[arg(long)]
        agree: bool,
        #[arg(long, default_value = "")]
        text: String,
    },
    /// The host makes the latest draft final.
    Finalize { meeting: String },
    /// The host records where the final report went.
    Send {
        meeting: String,
        /// national-committee (全国政协) | joint-proposal (联名提案) | governments (党委政府)
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "")]
        recipient: String,
        /// 文号 / 提案号
        #[arg(long, default_value = "")]
        reference: String,
        #[arg(long, default_value = "")]
        date: String,
    },
    /// A joint meeting: theme, contributions, drafts, comments, the report and the members'
    /// roll-ups.
    Show { meeting: String },
    /// Every joint meeting held here.
    List,
}

/// One group of a groups file (`[[group]] id, name, members, hosts`), e.g.
/// `shared/data/groups.toml`.
#[derive(Debug, PartialEq)]
struct GroupEntry {
    name: String,
    members: Vec<String>,
    hosts: Vec<(u32, String)>,
}

fn from_groups_file(path: &PathBuf, id: &str) -> Result<GroupEntry> {
    #[derive(serde::Deserialize)]
    struct File {
        group: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        id: String,
        name: String,
        #[serde(default)]
        members: Vec<String>,
        #[serde(default)]
        hosts: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the groups file {}", path.display()))?;
    let file: File = toml::from_str(&text)
        .with_context(|| format!("{} is not a groups file", path.display()))?;
    let known: Vec<String> = file.group.iter().map(|g| g.id.clone()).collect();
    let entry = file
        .group
        .into_iter()
        .find(|g| g.id == id)
        .with_context(|| {
            format!(
                "{} has no [[group]] with id = \"{id}\"; it has {}",
                path.display(),
                known.join(", ")
            )
        })?;
    let mut hosts = Vec::new();
    for (year, code) in entry.hosts {
        let year: u32 = year
            .parse()
            .with_context(|| format!("host year '{year}' in {} is not a year", path.display()))?;
        hosts.push((year, code));
    }
    Ok(GroupEntry {
        name: entry.name,
        members: entry.members,
        hosts,
    })
}

/// Host years: (year, host code).
type HostYears = Vec<(u32, String)>;

/// The charter terms a groups file gives for the members being chartered: the file's name,
/// and its host years whose host is among them (a charter names only members as hosts).
/// Refuses a member the file does not list. Returns the host years left out, to say so.
fn terms_from_file(
    entry: &GroupEntry,
    group: &str,
    members: &[pb::CharterMemberInput],
) -> Result<(HostYears, HostYears)> {
    if let Some(m) = members.iter().find(|m| !entry.members.contains(&m.code)) {
        bail!(
            "--member {} is not a member of {group} in the groups file (its members: {}); leave it out or use another --group",
            m.code,
            entry.members.join(", ")
        );
    }
    let (kept, left_out) = entry
        .hosts
        .iter()
        .cloned()
        .partition(|(_, host)| members.iter().any(|m| &m.code == host));
    Ok((kept, left_out))
}

fn parse_host(text: &str) -> Result<(u32, String)> {
    let Some((year, code)) = text.split_once('=') else {
        bail!("--host '{text}': write YEAR=CODE, e.g. --host 2026=640000");
    };
    let year: u32 = year
        .trim()
        .parse()
        .with_context(|| format!("--host '{text}': '{year}' is not a year"))?;
    Ok((year, code.trim().to_string()))
}

fn parse_member(text: &str) -> Result<pb::CharterMemberInput> {
    let mut parts = text.splitn(3, '=');
    let (Some(code), Some(key)) = (parts.next(), parts.next()) else {
        bail!("--member '{text}': write CODE=PUBLIC_KEY or CODE=PUBLIC_KEY=NAME");
    };
    Ok(pb::CharterMemberInput {
        code: code.trim().to_string(),
        public_key: key.trim().to_string(),
        name: parts.next().unwrap_or_default().trim().to_string(),
    })
}

pub async fn run(cmd: GroupCmd, c: &mut LocalClient, json: bool) -> Result<()> {
    match cmd {
        GroupCmd::Charter(CharterCmd::Propose {
            group,
            name,
            members,
            hosts,
            from,
        }) => {
            let members: Vec<pb::CharterMemberInput> = members
                .iter()
                .map(|m| parse_member(m))
                .collect::<Result<_>>()?;
            let (mut name, mut host_terms) = (name, Vec::new());
            if let Some(path) = &from {
                let entry = from_groups_file(path, &group)?;
                let (kept, left_out) = terms_from_file(&entry, &group, &members)?;
                if name.is_empty() {
                    name = entry.name;
                }
                host_terms = kept;
                for (year, host) in left_out {
                    eprintln!("note: the {year} host {host} in {} is not among the members chartered here; left out (add it by an amendment with that member)", path.display());
                }
            }
            for h in &hosts {
                host_terms.push(parse_host(h)?);
            }
            let req = pb::CharterProposalRequest {
                group_id: group,
                name,
                members,
                hosts: host_terms
                    .into_iter()
                    .map(|(year, code)| pb::CharterHostInput { year, code })
                    .collect(),
            };
            let r = c.propose_charter(req).await?.into_inner();
            emit(json, &r, |r| {
                format!(
                    "charter proposed: digest {} (event {} seq {}); every member listed must endorse it: `liandong group charter endorse --group ...`\n",
                    r.record_id,
                    print::short(&r.event_id),
                    r.seq
                )
            })
        }
        GroupCmd::Charter(CharterCmd::Endorse { group, digest }) => {
            let r = c
                .endorse_charter(pb::CharterEndorseRequest {
                    group_id: group,
                    digest,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("charter endorsed (签署)", r))
        }
        GroupCmd::List => emit(
            json,
            &c.list_groups(pb::Empty {}).await?.into_inner(),
            groups,
        ),
        GroupCmd::Rollup {
            meeting,
            topic,
            note,
        } => {
            let r = c
                .publish_rollup(pb::JointRollupRequest {
                    meeting_id: meeting,
                    topic_id: topic,
                    note,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("roll-up published", r))
        }
        GroupCmd::Meeting(m) => meeting_cmd(m, c, json).await,
    }
}

async fn meeting_cmd(cmd: MeetingCmd, c: &mut LocalClient, json: bool) -> Result<()> {
    let r = match cmd {
        MeetingCmd::Convene {
            group,
            year,
            theme,
            description,
            date,
            place,
            subtrees,
        } => {
            let r = c
                .convene_joint_meeting(pb::JointConveneRequest {
                    group_id: group,
                    year,
                    theme,
                    description,
                    date,
                    place,
                    include_subtrees: subtrees,
                })
                .await?
                .into_inner();
            ("joint meeting convened", r)
        }
        MeetingCmd::Contribute {
            meeting,
            text,
            title,
            kind,
            recommendations,
            revise,
        } => {
            let r = c
                .contribute_joint(pb::JointContributeRequest {
                    meeting_id: meeting,
                    contribution_id: revise,
                    kind,
                    title,
                    text,
                    recommendations,
                    attachment_digests: vec![],
                })
                .await?
                .into_inner();
            ("contributed", r)
        }
        MeetingCmd::Draft {
            meeting,
            text,
            title,
            recommendations,
        } => {
            let r = c
                .draft_joint_report(pb::JointDraftRequest {
                    meeting_id: meeting,
                    title,
                    text,
                    recommendations,
                })
                .await?
                .into_inner();
            ("joint report drafted", r)
        }
        MeetingCmd::Comment {
            meeting,
            version,
            agree,
            text,
        } => {
            let r = c
                .comment_joint_report(pb::JointCommentRequest {
                    meeting_id: meeting,
                    version,
                    agree,
                    text,
                })
                .await?
                .into_inner();
            ("commented", r)
        }
        MeetingCmd::Finalize { meeting } => {
            let r = c
                .finalize_joint_report(pb::JointMeetingRef {
                    meeting_id: meeting,
                })
                .await?
                .into_inner();
            ("joint report finalized", r)
        }
        MeetingCmd::Send {
            meeting,
            to,
            recipient,
            reference,
            date,
        } => {
            let r = c
                .send_joint_report(pb::JointSendRequest {
                    meeting_id: meeting,
                    destination: to,
                    recipient,
                    reference,
                    date,
                })
                .await?
                .into_inner();
            ("sending recorded", r)
        }
        MeetingCmd::Show { meeting } => {
            let v = c
                .get_joint_meeting(pb::JointMeetingRef {
                    meeting_id: meeting,
                })
                .await?
                .into_inner();
            return emit(json, &v, joint_meeting);
        }
        MeetingCmd::List => {
            let v = c.list_joint_meetings(pb::Empty {}).await?.into_inner();
            return emit(json, &v, joint_meetings);
        }
    };
    let (what, receipt) = r;
    emit(json, &receipt, |r| print::receipt(what, r))
}

fn pct(p: f64) -> String {
    format!("{:>3.0}%", p * 100.0)
}

/// `group list`.
pub fn groups(list: &pb::GroupList) -> String {
    let mut out = String::new();
    if list.groups.is_empty() {
        out.push_str("no lateral group known here\n");
    }
    for g in &list.groups {
        let _ = writeln!(
            out,
            "{}  {}  {}",
            g.id,
            g.name,
            if g.version == 0 {
                "(no charter in force yet)".to_string()
            } else {
                format!("charter v{} in force", g.version)
            }
        );
        for m in &g.members {
            let _ = writeln!(out, "  member {} {}  key {}", m.code, m.name, &m.public_key);
        }
        if !g.hosts.is_empty() {
            let hosts: Vec<String> = g
                .hosts
                .iter()
                .map(|h| format!("{} {}", h.year, h.code))
                .collect();
            let _ = writeln!(out, "  hosts  {}", hosts.join(", "));
        }
        for p in &g.proposals {
            let endorsed: Vec<&str> = p
                .members
                .iter()
                .filter(|m| m.endorsed)
                .map(|m| m.code.as_str())
                .collect();
            let _ = write!(
                out,
                "  v{} {} by {} [{}]  endorsed by {}",
                p.version,
                &p.digest[..p.digest.len().min(12)],
                p.proposer,
                p.status,
                endorsed.join(" ")
            );
            if p.status == "pending" {
                if !p.missing.is_empty() {
                    let _ = write!(out, "; awaits {}", p.missing.join(" "));
                }
                if p.majority_short > 0 {
                    let _ = write!(
                        out,
                        "; {} more member(s) in force for a majority",
                        p.majority_short
                    );
                }
            }
            out.push('\n');
        }
        for r in &g.refused {
            let _ = writeln!(out, "  refused: {r}");
        }
    }
    out
}

/// `group meeting list`.
pub fn joint_meetings(list: &pb::JointMeetingList) -> String {
    let mut out = String::new();
    if list.meetings.is_empty() {
        out.push_str("no joint meeting held here\n");
    }
    for m in &list.meetings {
        let _ = writeln!(
            out,
            "{}  {} {}  {}  host {} {}  [{}]  {}  {} of {} members reporting",
            print::short(&m.id),
            m.group_id,
            m.year,
            m.theme,
            m.host,
            m.host_name,
            m.status,
            pct(m.progress),
            m.rollups.len(),
            m.members.len()
        );
    }
    out
}

/// `group meeting show`: the meeting, its report and the roll-up across the members.
pub fn joint_meeting(m: &pb::JointMeetingView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "联席会议 {}  {} {}\n  theme   {}\n  host    {} {}   status {}{}",
        m.id,
        m.group_id,
        m.year,
        m.theme,
        m.host,
        m.host_name,
        m.status,
        if m.include_subtrees {
            "   (to the members' whole trees)"
        } else {
            ""
        }
    );
    if !m.date.is_empty() || !m.place.is_empty() {
        let _ = writeln!(out, "  when    {} {}", m.date, m.place);
    }
    let _ = writeln!(
        out,
        "  roll-up {}  ({} of {} members reporting)",
        pct(m.progress),
        m.rollups.len(),
        m.members.len()
    );
    for r in &m.rollups {
        let _ = writeln!(
            out,
            "    {} {:<12} {}  {}: {} assignments over {} committees, {} acknowledged, {} submitted, {} approved, {} overdue; recommendations {}/{} closed, re-consultation rounds {}{}",
            r.member,
            r.member_name,
            pct(r.progress),
            r.topic_title,
            r.assignments,
            r.committees,
            r.acknowledged,
            r.submitted,
            r.approved,
            r.overdue,
            r.recommendations_closed,
            r.recommendations,
            r.reconsultation_rounds,
            if r.note.is_empty() {
                String::new()
            } else {
                format!("  ({})", r.note)
            }
        );
    }
    if !m.not_reported.is_empty() {
        let _ = writeln!(out, "    not reported yet: {}", m.not_reported.join(" "));
    }
    for k in &m.contributions {
        let _ = writeln!(
            out,
            "  contribution {} by {} {} v{} ({}): {}",
            print::short(&k.id),
            k.member,
            k.member_name,
            k.version,
            k.kind,
            if k.title.is_empty() {
                &k.text
            } else {
                &k.title
            }
        );
    }
    for d in &m.drafts {
        let _ = writeln!(
            out,
            "  draft v{}{}: {}",
            d.version,
            if m.final_version == d.version {
                " (final)"
            } else {
                ""
            },
            if d.title.is_empty() {
                &d.text
            } else {
                &d.title
            }
        );
        for k in m.comments.iter().filter(|k| k.version == d.version) {
            let _ = writeln!(
                out,
                "    comment by {} {}: {}",
                k.member,
                k.member_name,
                if k.agree && k.text.is_empty() {
                    "无修改意见 agree".to_string()
                } else {
                    k.text.clone()
                }
            );
        }
    }
    for s in &m.dispatches {
        let _ = writeln!(
            out,
            "  sent to {} {} {} {}",
            s.destination, s.recipient, s.reference, s.date
        );
    }
    for r in &m.refused {
        let _ = writeln!(out, "  refused: {r}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_hosts_parse_and_say_what_is_wrong() {
        let m = parse_member("640000=abcd=宁夏回族自治区政协").expect("member");
        assert_eq!(
            (m.code.as_str(), m.public_key.as_str(), m.name.as_str()),
            ("640000", "abcd", "宁夏回族自治区政协")
        );
        assert!(parse_member("640000").is_err());
        assert_eq!(
            parse_host("2026=640000").expect("host"),
            (2026, "640000".into())
        );
        let e = parse_host("next=640000").expect_err("year").to_string();
        assert!(e.contains("not a year"), "{e}");
    }

    #[test]
    fn a_groups_file_gives_names_members_and_hosts() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("groups.toml");
        std::fs::write(
            &p,
            "[[group]]\nid = \"northwest-5\"\nname = \"西北五省（区）联席会议\"\nmembers = [\"610000\", \"620000\"]\nhosts = { 2020 = \"620000\", 2021 = \"650000\" }\n",
        )
        .expect("write");
        let entry = from_groups_file(&p, "northwest-5").expect("read");
        assert!(entry.name.contains("西北"));
        assert_eq!(entry.members, ["610000", "620000"]);
        assert_eq!(
            entry.hosts,
            vec![(2020, "620000".into()), (2021, "650000".into())]
        );
        let e = from_groups_file(&p, "yellow-river-9").expect_err("absent");
        assert!(e.to_string().contains("it has northwest-5"), "{e}");
    }

    fn member(code: &str) -> pb::CharterMemberInput {
        pb::CharterMemberInput {
            code: code.into(),
            ..Default::default()
        }
    }

    /// The real file in shared/data: the three groups of the source material, their
    /// members, and the north-west group's rotating hosts, cut down to a charter's members.
    #[test]
    fn the_shared_groups_file_charters_its_groups() {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/groups.toml");
        if !p.exists() {
            eprintln!(
                "SKIPPED: {} is not here (a checkout without shared/)",
                p.display()
            );
            return;
        }
        let yellow = from_groups_file(&p, "yellow-river-9").expect("yellow river");
        assert_eq!(yellow.members.len(), 9);
        assert!(yellow.members.contains(&"620000".to_string()));
        assert!(yellow.name.contains("沿黄九省区"));
        let belt = from_groups_file(&p, "belt-road-7").expect("belt and road");
        assert_eq!(belt.members.len(), 7);
        let nw = from_groups_file(&p, "northwest-5").expect("north-west");
        assert_eq!(nw.members.len(), 5);
        assert!(nw.hosts.contains(&(2020, "620000".into())));
        let three = [member("620000"), member("630000"), member("640000")];
        let (kept, left_out) = terms_from_file(&nw, "northwest-5", &three).expect("terms");
        assert_eq!(kept, vec![(2020, "620000".into()), (2023, "630000".into())]);
        assert_eq!(left_out.len(), 2, "Xinjiang's and Shaanxi's years");
        let e = terms_from_file(&nw, "northwest-5", &[member("620000"), member("510000")])
            .expect_err("Sichuan is not in the north-west group");
        assert!(e.to_string().contains("--member 510000"), "{e}");
    }
}
