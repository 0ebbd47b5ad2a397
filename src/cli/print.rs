//! Human-readable output: names and titles as people write them (Chinese), short ids, a tree
//! for a topic's progress. `--json` bypasses all of this.
use std::fmt::Write;

use crate::pb;

/// The last 8 hex digits of a UUID: enough to name a record on the command line. (A UUID
/// v7 starts with its timestamp, so its head is the same for records made together; its
/// tail is random.)
pub fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

fn pct(p: f64) -> String {
    format!("{:>3.0}%", p * 100.0)
}

fn state_label(a: &pb::AssignmentView) -> String {
    let zh = match a.state.as_str() {
        "issued" => "已下达",
        "acknowledged" => "已签收",
        "submitted" => "已提交",
        "returned" => "已退回",
        "approved" => "已通过",
        "cancelled" => "已撤销",
        _ => "待同步",
    };
    let mut s = format!("{zh} {}", a.state);
    if let Some(v) = a.submissions.last() {
        let _ = write!(s, " v{}", v.version);
    }
    if a.overdue {
        s.push_str(" 逾期 OVERDUE");
    }
    s
}

fn assignment_line(out: &mut String, a: &pb::AssignmentView, prefix: &str, last: bool) {
    let branch = if last { "└─ " } else { "├─ " };
    let _ = writeln!(
        out,
        "{prefix}{branch}{} {}  → {} {}  [{}]  签收 {}  截止 {}  {}",
        short(&a.id),
        a.title,
        a.assignee,
        a.assignee_name,
        state_label(a),
        if a.acknowledged { "✓" } else { "✗" },
        if a.due_date.is_empty() {
            "-"
        } else {
            &a.due_date
        },
        pct(a.progress),
    );
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    if let Some(r) = a.reviews.last() {
        if r.verdict == "return" && a.state == "returned" {
            let _ = writeln!(out, "{child_prefix}   退回 returned: {}", r.comment);
        }
    }
    for why in &a.refused {
        let _ = writeln!(out, "{child_prefix}   ! refused: {why}");
    }
    for (i, c) in a.children.iter().enumerate() {
        assignment_line(out, c, &child_prefix, i + 1 == a.children.len());
    }
}

/// A topic with its progress tree.
pub fn topic(t: &pb::TopicView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "议题 {}  {}  [{}]  进度 {}",
        short(&t.id),
        t.title,
        t.state,
        pct(t.progress)
    );
    let _ = writeln!(
        out,
        "   {} {} · {} · {} · {} 年",
        t.owner, t.owner_name, t.source, t.form, t.plan_year
    );
    if !t.closing_text.is_empty() {
        let _ = writeln!(out, "   结论: {}", t.closing_text);
    }
    for (i, a) in t.assignments.iter().enumerate() {
        assignment_line(&mut out, a, "   ", i + 1 == t.assignments.len());
    }
    if t.assignments.is_empty() {
        let _ = writeln!(out, "   (no assignments visible here yet)");
    }
    out
}

pub fn topics(list: &pb::TopicList) -> String {
    if list.topics.is_empty() {
        return "no topics yet\n".into();
    }
    let mut out = String::new();
    for t in &list.topics {
        let _ = writeln!(
            out,
            "{}  {}  [{}]  {}  {} {}",
            short(&t.id),
            t.title,
            t.state,
            pct(t.progress),
            t.owner,
            t.owner_name
        );
    }
    out
}

pub fn tasks(list: &pb::TaskList) -> String {
    if list.tasks.is_empty() {
        return "no tasks assigned to this committee\n".into();
    }
    let mut out = String::new();
    for a in &list.tasks {
        let _ = writeln!(
            out,
            "{}  {}  ({})  from {} {}  [{}]  截止 {}",
            short(&a.id),
            a.title,
            a.topic_title,
            a.assigner,
            a.assigner_name,
            state_label(a),
            a.due_date
        );
    }
    out
}

pub fn guidance(list: &pb::GuidanceList) -> String {
    if list.guidance.is_empty() {
        return "no guidance\n".into();
    }
    let mut out = String::new();
    for g in &list.guidance {
        let _ = writeln!(
            out,
            "{}  {}  from {} {}  签收 {}/{}{}",
            short(&g.id),
            g.title,
            g.issuer,
            g.issuer_name,
            g.acknowledged_by.len(),
            g.recipients.len(),
            if g.acknowledged_here {
                "  (已签收 here)"
            } else {
                ""
            }
        );
        let missing: Vec<&String> = g
            .recipients
            .iter()
            .filter(|r| !g.acknowledged_by.contains(r))
            .collect();
        if !missing.is_empty() && missing.len() < g.recipients.len() {
            let _ = writeln!(
                out,
                "          awaiting: {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    out
}

pub fn reports(list: &pb::ReportList) -> String {
    if list.reports.is_empty() {
        return "no reports\n".into();
    }
    let mut out = String::new();
    for r in &list.reports {
        let _ = writeln!(
            out,
            "{}  {}  [{}]  {} {} → {}  {}",
            short(&r.id),
            r.title,
            r.kind,
            r.sender,
            r.sender_name,
            r.to,
            if r.acknowledged {
                "已签收"
            } else {
                "未签收"
            }
        );
    }
    out
}

pub fn status(s: &pb::StatusView) -> String {
    let mut out = String::new();
    if s.level.is_empty() {
        let _ = writeln!(
            out,
            "{} (not registered yet: the parent must run `liandong committee register` with this node's key; then it syncs here)",
            s.committee
        );
    } else {
        let _ = writeln!(out, "{} {} ({})", s.committee, s.name, s.level);
    }
    let _ = writeln!(
        out,
        "  events held {}   authored here {}   quarantined {}   roster {}",
        s.events, s.own_events, s.quarantined, s.roster_size
    );
    for l in &s.links {
        let _ = writeln!(
            out,
            "  link {:<6} {} {:<10} {:<12} out-lag {:<5} in-lag {:<5} {}",
            l.role, l.peer, l.peer_name, l.state, l.outbound_lag, l.inbound_lag, l.last_error
        );
    }
    for f in &s.flagged {
        let _ = writeln!(out, "  ! equivocation by {f}");
    }
    if s.links.is_empty() {
        let _ = writeln!(out, "  no links yet");
    }
    out
}

pub fn quarantine(q: &pb::QuarantineList) -> String {
    if q.entries.is_empty() {
        return "quarantine is empty\n".into();
    }
    let mut out = String::new();
    for e in &q.entries {
        let _ = writeln!(
            out,
            "{}  from {}  origin {} seq {}: {}",
            short(&e.id),
            e.received_from,
            e.origin,
            e.seq,
            e.reason
        );
    }
    out
}

pub fn committees(c: &pb::CommitteeList2) -> String {
    let mut out = String::new();
    for m in &c.committees {
        let _ = writeln!(
            out,
            "{}  {:<12} {:<8} parent {}",
            m.code,
            m.name,
            m.level,
            if m.parent.is_empty() { "-" } else { &m.parent }
        );
    }
    out
}

pub fn receipt(what: &str, r: &pb::Receipt) -> String {
    if r.event_id.is_empty() {
        return format!("{what}: {} (already so; nothing written)\n", r.record_id);
    }
    format!(
        "{what}: {} (event {} seq {})\n",
        r.record_id,
        short(&r.event_id),
        r.seq
    )
}

pub fn quarantine_entry(e: &pb::QuarantineEntry) -> String {
    format!(
        "id {}\ncategory {}\nreason {}\nfrom link {}\norigin {} seq {}\ndecoded {}\nframe {}\n",
        e.id, e.category, e.reason, e.received_from, e.origin, e.seq, e.decoded, e.frame_hex
    )
}
