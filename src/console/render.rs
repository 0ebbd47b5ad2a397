//! The console's HTML, as pure functions from the local API's view types to a `String`: no
//! IO, no clock (the caller passes `today` and `now_ms`), no scripts. Every piece of text that
//! comes from the store — titles, names, comments, reasons — goes through [`esc`].
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::pb;

/// Seconds between automatic reloads of the page.
pub const REFRESH_SECS: u32 = 30;

/// Everything the page shows, read from the node in one go.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub status: pb::StatusView,
    pub topics: pb::TopicList,
    pub tasks: pb::TaskList,
    pub committees: pb::CommitteeList2,
    pub guidance: pb::GuidanceList,
    pub reports: pb::ReportList,
    pub quarantine: pb::QuarantineList,
    /// The date in China Standard Time, YYYY-MM-DD (what "overdue" is measured against).
    pub today: String,
    /// Unix milliseconds now (for "last seen … ago").
    pub now_ms: u64,
}

/// HTML-escapes text for element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1f2328;font:15px/1.6 "Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif}
header{background:#8b1a1a;color:#fff;padding:14px 28px 12px}
header h1{margin:0;font-size:22px;font-weight:600;letter-spacing:.04em}
header .meta{margin:2px 0 8px;color:#fff;opacity:.85;font-size:13px}
.code{font:13px ui-monospace,"DejaVu Sans Mono",monospace;opacity:.8;margin-left:.4em}
.stats{display:flex;flex-wrap:wrap;gap:8px;margin:0;padding:0;list-style:none}
.stats li{background:rgba(255,255,255,.14);border-radius:4px;padding:2px 10px;font-size:13px}
.stats li b{font-size:16px;margin-right:2px}
.stats li.alert{background:#ffd7d5;color:#8b1a1a}
main{padding:8px 28px 24px;max-width:1280px}
section{background:#fff;border:1px solid #dfe2e6;border-radius:6px;margin:14px 0;padding:10px 18px 14px}
h2{font-size:17px;margin:2px 0 8px;padding-bottom:4px;border-bottom:1px solid #eceef1}
h2 .n{font-weight:400;color:#6a737d;font-size:14px;margin-left:.4em}
summary{cursor:pointer;padding:2px 0}
summary .tt{font-size:16px;font-weight:600;margin-right:6px}
summary .sp{margin-left:14px;font-size:13px;color:#57606a}
table{border-collapse:collapse;width:100%;font-size:14px}
th{text-align:left;font-weight:500;color:#57606a;background:#f6f8fa}
th,td{padding:4px 8px;border-bottom:1px solid #eceef1;vertical-align:top}
.empty{color:#6a737d;margin:4px 0}
.meta{color:#57606a;font-size:13px;margin:0}
.badge{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;line-height:20px;white-space:nowrap;background:#eaeef2;color:#424a53}
.s-issued{background:#ddf4ff;color:#0a3069}.s-acknowledged{background:#dafbe1;color:#116329}
.s-submitted{background:#fff8c5;color:#7d4e00}.s-returned{background:#ffebe9;color:#a40e26}
.s-approved{background:#1a7f37;color:#fff}.s-cancelled{background:#eaeef2;color:#6a737d;text-decoration:line-through}
.s-published{background:#ddf4ff;color:#0a3069}.s-concluded{background:#1a7f37;color:#fff}
.s-withdrawn,.s-draft{background:#eaeef2;color:#6a737d}
.s-connected{background:#dafbe1;color:#116329}.s-connecting{background:#fff8c5;color:#7d4e00}.s-disconnected{background:#ffebe9;color:#a40e26}
.ok{color:#1a7f37}.no{color:#a40e26}
.overdue-tag{background:#cf222e;color:#fff}
.bar{display:inline-block;width:120px;height:8px;background:#e6e8eb;border-radius:4px;overflow:hidden;vertical-align:middle}
.bar>span{display:block;height:100%;background:#2da44e}
.bar.big{width:260px;height:10px}
.pct{display:inline-block;min-width:3.2em;text-align:right;font-variant-numeric:tabular-nums;font-size:13px;color:#57606a}
.topic{border-top:1px solid #eceef1;padding:8px 0 6px}
.topic:first-of-type{border-top:0}
.topic>.meta{margin-left:18px}
.closing{color:#424a53}
ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:22px}
ul.tree{padding-left:4px;margin-top:6px}
ul.tree li{position:relative;margin:2px 0}
ul.tree ul li::before{content:"";position:absolute;left:-13px;top:0;height:15px;width:9px;border-left:1px solid #c4c9cf;border-bottom:1px solid #c4c9cf}
.row{display:flex;flex-wrap:wrap;align-items:center;gap:4px 10px;padding:3px 8px;border-radius:4px}
.row .t{font-weight:500}
.row .who{color:#57606a}
.row .due{font-variant-numeric:tabular-nums;color:#57606a;font-size:13px}
li.late>.row{background:#fff1f0;border-left:3px solid #cf222e}
li.late>.row .due{color:#cf222e;font-weight:600}
.note{margin:0 0 2px 10px;font-size:13px;color:#a40e26}
.refused{margin:0 0 2px 10px;font-size:13px;color:#7d4e00}
tr.late td{background:#fff1f0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.lag{color:#a40e26;font-weight:600}
.mono{font:12px ui-monospace,"DejaVu Sans Mono",monospace;color:#57606a;word-break:break-all}
footer{color:#6a737d;font-size:12px;padding:0 28px 20px}
"#;

fn pct(p: f64) -> u32 {
    if p.is_finite() {
        (p.clamp(0.0, 1.0) * 100.0).round() as u32
    } else {
        0
    }
}

fn bar(p: f64, big: bool) -> String {
    let v = pct(p);
    format!(
        "<span class=\"bar{}\" role=\"progressbar\" aria-valuenow=\"{v}\" aria-valuemin=\"0\" aria-valuemax=\"100\"><span style=\"width:{v}%\"></span></span> <span class=\"pct\">{v}%</span>",
        if big { " big" } else { "" }
    )
}

/// 状态 of an assignment, in Chinese.
pub fn assignment_state_zh(state: &str) -> &'static str {
    match state {
        "issued" => "已下达",
        "acknowledged" => "已签收",
        "submitted" => "已提交",
        "returned" => "已退回",
        "approved" => "已通过",
        "cancelled" => "已撤销",
        _ => "待同步",
    }
}

pub fn topic_state_zh(state: &str) -> &'static str {
    match state {
        "draft" => "草稿",
        "published" => "进行中",
        "concluded" => "已结束",
        "withdrawn" => "已撤回",
        _ => "待同步",
    }
}

fn source_zh(s: &str) -> &str {
    match s {
        "party-government" => "党政点题",
        "members" => "委员征题",
        "committee" => "政协选题",
        other => other,
    }
}

fn form_zh(s: &str) -> &str {
    match s {
        "thematic" => "专题协商",
        "counterpart" => "对口协商",
        "sector" => "界别协商",
        "proposal-handling" => "提案办理协商",
        other => other,
    }
}

fn tier_zh(s: &str) -> &str {
    match s {
        "county-and-above" => "县级及以上",
        "grassroots" => "基层",
        other => other,
    }
}

fn level_zh(s: &str) -> &str {
    match s {
        "national" => "全国政协",
        "province" => "省级政协",
        "city" => "市级政协",
        "county" => "县级政协",
        other => other,
    }
}

fn report_kind_zh(s: &str) -> &str {
    match s {
        "public-opinion" => "社情民意信息",
        "proposal" => "提案",
        "work-summary" => "工作总结",
        other => other,
    }
}

fn link_state_zh(s: &str) -> &str {
    match s {
        "connected" => "已连接",
        "connecting" => "连接中",
        "disconnected" => "未连接",
        other => other,
    }
}

fn role_zh(s: &str) -> &str {
    match s {
        "parent" => "上级",
        "child" => "下级",
        other => other,
    }
}

/// Only known words become CSS classes (never text from the store).
fn class_word(s: &str) -> &'static str {
    const KNOWN: [&str; 12] = [
        "issued",
        "acknowledged",
        "submitted",
        "returned",
        "approved",
        "cancelled",
        "published",
        "concluded",
        "withdrawn",
        "draft",
        "connected",
        "connecting",
    ];
    KNOWN
        .iter()
        .find(|k| **k == s)
        .copied()
        .unwrap_or(if s == "disconnected" {
            "disconnected"
        } else {
            "other"
        })
}

/// Days since 1970-01-01 of a YYYY-MM-DD date (Howard Hinnant's days_from_civil).
fn days(date: &str) -> Option<i64> {
    let mut it = date.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// How many days `due` is behind `today` (0 when not behind or not a date).
pub fn days_overdue(due: &str, today: &str) -> i64 {
    match (days(due), days(today)) {
        (Some(d), Some(t)) if t > d => t - d,
        _ => 0,
    }
}

/// "HH:MM:SS" or "YYYY-MM-DD HH:MM" in China Standard Time.
fn cst_time(ms: u64, with_date: bool) -> String {
    let secs = ms / 1000 + 8 * 3600;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    if with_date {
        format!(
            "{} {h:02}:{m:02}",
            crate::clock::date_of(ms) // date_of applies CST itself
        )
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

fn ago(last_ms: u64, now_ms: u64) -> String {
    if last_ms == 0 {
        return "从未".into();
    }
    let s = now_ms.saturating_sub(last_ms) / 1000;
    match s {
        0..=59 => format!("{s} 秒前"),
        60..=3599 => format!("{} 分钟前", s / 60),
        3600..=86_399 => format!("{} 小时前", s / 3600),
        _ => format!("{} 天前", s / 86_400),
    }
}

/// Committees at or below `root`, from the roster's parent links.
pub fn subtree(committees: &pb::CommitteeList2, root: &str) -> BTreeSet<String> {
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in &committees.committees {
        children.entry(c.parent.as_str()).or_default().push(&c.code);
    }
    let mut out = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(c) = stack.pop() {
        if out.insert(c.to_string()) {
            if let Some(kids) = children.get(c) {
                stack.extend(kids.iter().copied());
            }
        }
    }
    out
}

/// Overdue assignments of every topic whose assignee is in `within`, most overdue first.
pub fn overdue<'a>(
    topics: &'a pb::TopicList,
    within: &BTreeSet<String>,
) -> Vec<&'a pb::AssignmentView> {
    fn walk<'a>(
        a: &'a pb::AssignmentView,
        within: &BTreeSet<String>,
        out: &mut Vec<&'a pb::AssignmentView>,
    ) {
        if a.overdue && within.contains(&a.assignee) {
            out.push(a);
        }
        for c in &a.children {
            walk(c, within, out);
        }
    }
    let mut out = Vec::new();
    for t in &topics.topics {
        for a in &t.assignments {
            walk(a, within, &mut out);
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|a| seen.insert(a.id.clone()));
    out.sort_by(|a, b| a.due_date.cmp(&b.due_date).then(a.id.cmp(&b.id)));
    out
}

fn committee(name: &str, code: &str) -> String {
    if name.is_empty() {
        format!("<span class=\"code\">{}</span>", esc(code))
    } else {
        format!("{}<span class=\"code\">{}</span>", esc(name), esc(code))
    }
}

fn state_badge(state: &str, zh: &str) -> String {
    format!(
        "<span class=\"badge s-{}\">{}</span>",
        class_word(state),
        esc(zh)
    )
}

fn due_text(a: &pb::AssignmentView, today: &str) -> String {
    if a.due_date.is_empty() {
        return "<span class=\"due\">无截止日期</span>".into();
    }
    let mut s = format!("<span class=\"due\">截止 {}</span>", esc(&a.due_date));
    if a.overdue {
        let _ = write!(
            s,
            " <span class=\"badge overdue-tag\">逾期 {} 天</span>",
            days_overdue(&a.due_date, today).max(1)
        );
    }
    s
}

fn ack_text(acknowledged: bool) -> &'static str {
    if acknowledged {
        "<span class=\"ok\">签收 ✓</span>"
    } else {
        "<span class=\"no\">签收 ✗</span>"
    }
}

fn assignment_item(out: &mut String, a: &pb::AssignmentView, today: &str) {
    let version = a
        .submissions
        .last()
        .map(|s| format!(" 第{}稿", s.version))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<li{}><div class=\"row\"><span class=\"t\">{}</span><span class=\"who\">→ {}</span>{}{} {} {} {}</div>",
        if a.overdue { " class=\"late\"" } else { "" },
        esc(&a.title),
        committee(&a.assignee_name, &a.assignee),
        state_badge(&a.state, assignment_state_zh(&a.state)),
        esc(&version),
        ack_text(a.acknowledged),
        due_text(a, today),
        bar(a.progress, false),
    );
    if a.state == "returned" {
        if let Some(r) = a.reviews.iter().rev().find(|r| r.verdict == "return") {
            let _ = write!(out, "<p class=\"note\">退回意见：{}</p>", esc(&r.comment));
        }
    }
    for why in &a.refused {
        let _ = write!(out, "<p class=\"refused\">已拒绝的操作：{}</p>", esc(why));
    }
    if !a.children.is_empty() {
        out.push_str("<ul>");
        for c in &a.children {
            assignment_item(out, c, today);
        }
        out.push_str("</ul>");
    }
    out.push_str("</li>");
}

fn is_closed(t: &pb::TopicView) -> bool {
    matches!(t.state.as_str(), "concluded" | "withdrawn")
}

/// One topic with its progress tree; unfolded while the topic is open, folded once closed.
pub fn topic(t: &pb::TopicView, today: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<details class=\"topic\" id=\"topic-{}\"{}><summary><span class=\"tt\">{}</span>{}<span class=\"sp\">总体进度 {}</span></summary>",
        esc(&t.id),
        if is_closed(t) { "" } else { " open" },
        esc(&t.title),
        state_badge(&t.state, topic_state_zh(&t.state)),
        bar(t.progress, true),
    );
    let mut meta = vec![
        committee(&t.owner_name, &t.owner),
        esc(source_zh(&t.source)),
        esc(form_zh(&t.form)),
        esc(tier_zh(&t.tier)),
    ];
    if t.plan_year > 0 {
        meta.push(format!("{} 年度", t.plan_year));
    }
    let _ = write!(out, "<p class=\"meta\">{}</p>", meta.join(" · "));
    if !t.description.is_empty() {
        let _ = write!(out, "<p class=\"meta\">{}</p>", esc(&t.description));
    }
    if !t.closing_text.is_empty() {
        let _ = write!(
            out,
            "<p class=\"meta closing\">结论：{}</p>",
            esc(&t.closing_text)
        );
    }
    if t.assignments.is_empty() {
        out.push_str("<p class=\"empty\">本节点尚未看到该议题的课题分工。</p>");
    } else {
        out.push_str("<ul class=\"tree\">");
        for a in &t.assignments {
            assignment_item(&mut out, a, today);
        }
        out.push_str("</ul>");
    }
    out.push_str("</details>");
    out
}

fn section_head(out: &mut String, id: &str, title: &str, n: Option<usize>) {
    let _ = write!(out, "<section id=\"{id}\"><h2>{title}");
    if let Some(n) = n {
        let _ = write!(out, "<span class=\"n\">{n}</span>");
    }
    out.push_str("</h2>");
}

fn overdue_section(out: &mut String, p: &Page, late: &[&pb::AssignmentView]) {
    section_head(out, "overdue", "逾期事项（本会及下级）", Some(late.len()));
    if late.is_empty() {
        out.push_str("<p class=\"empty\">没有逾期的课题。</p></section>");
        return;
    }
    out.push_str("<table><thead><tr><th>课题</th><th>承担单位</th><th>议题</th><th>截止日期</th><th>逾期</th><th>状态</th></tr></thead><tbody>");
    for a in late {
        let _ = write!(
            out,
            "<tr class=\"late\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{} 天</td><td>{} {}</td></tr>",
            esc(&a.title),
            committee(&a.assignee_name, &a.assignee),
            esc(&a.topic_title),
            esc(&a.due_date),
            days_overdue(&a.due_date, &p.today).max(1),
            state_badge(&a.state, assignment_state_zh(&a.state)),
            ack_text(a.acknowledged),
        );
    }
    out.push_str("</tbody></table></section>");
}

/// Rolled-up progress of every assignment in the topics' trees (a task list carries only
/// the assignment's own status; the tree also counts its sub-assignments).
fn rolled_up(topics: &pb::TopicList) -> BTreeMap<&str, f64> {
    fn walk<'a>(a: &'a pb::AssignmentView, out: &mut BTreeMap<&'a str, f64>) {
        out.insert(a.id.as_str(), a.progress);
        for c in &a.children {
            walk(c, out);
        }
    }
    let mut out = BTreeMap::new();
    for t in &topics.topics {
        for a in &t.assignments {
            walk(a, &mut out);
        }
    }
    out
}

fn tasks_section(out: &mut String, p: &Page) {
    section_head(out, "tasks", "本会承担的课题", Some(p.tasks.tasks.len()));
    let progress = rolled_up(&p.topics);
    if p.tasks.tasks.is_empty() {
        out.push_str("<p class=\"empty\">没有下达给本会的课题。</p></section>");
        return;
    }
    out.push_str("<table><thead><tr><th>课题</th><th>所属议题</th><th>下达单位</th><th>状态</th><th>签收</th><th>截止日期</th><th>进度</th></tr></thead><tbody>");
    for a in &p.tasks.tasks {
        let _ = write!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if a.overdue { " class=\"late\"" } else { "" },
            esc(&a.title),
            esc(&a.topic_title),
            committee(&a.assigner_name, &a.assigner),
            state_badge(&a.state, assignment_state_zh(&a.state)),
            ack_text(a.acknowledged),
            due_text(a, &p.today),
            bar(
                progress.get(a.id.as_str()).copied().unwrap_or(a.progress),
                false
            ),
        );
    }
    out.push_str("</tbody></table></section>");
}

fn topics_section(out: &mut String, p: &Page) {
    section_head(out, "topics", "议题与进度", Some(p.topics.topics.len()));
    if p.topics.topics.is_empty() {
        out.push_str("<p class=\"empty\">本节点还没有议题。</p>");
    }
    // Work in progress first, concluded and withdrawn topics after it.
    let (closed, open): (Vec<_>, Vec<_>) = p.topics.topics.iter().partition(|t| is_closed(t));
    for t in open.into_iter().chain(closed) {
        out.push_str(&topic(t, &p.today));
    }
    out.push_str("</section>");
}

fn notices_section(out: &mut String, p: &Page) {
    let n = p.guidance.guidance.len() + p.reports.reports.len();
    section_head(out, "notices", "指导意见与报送", Some(n));
    if n == 0 {
        out.push_str("<p class=\"empty\">没有指导意见或报送。</p></section>");
        return;
    }
    out.push_str("<table><thead><tr><th>类别</th><th>标题</th><th>发出</th><th>签收</th></tr></thead><tbody>");
    for g in &p.guidance.guidance {
        let here = if g.issuer == p.status.committee {
            String::new()
        } else if g.acknowledged_here {
            "，本会 <span class=\"ok\">✓</span>".into()
        } else {
            "，本会 <span class=\"no\">未签收</span>".into()
        };
        let _ = write!(
            out,
            "<tr><td>指导意见</td><td>{}</td><td>{}</td><td>{}/{}{}</td></tr>",
            esc(&g.title),
            committee(&g.issuer_name, &g.issuer),
            g.acknowledged_by.len(),
            g.recipients.len(),
            here
        );
    }
    for r in &p.reports.reports {
        let _ = write!(
            out,
            "<tr><td>报送 · {}</td><td>{}</td><td>{} → <span class=\"code\">{}</span></td><td>{}</td></tr>",
            esc(report_kind_zh(&r.kind)),
            esc(&r.title),
            committee(&r.sender_name, &r.sender),
            esc(&r.to),
            ack_text(r.acknowledged),
        );
    }
    out.push_str("</tbody></table></section>");
}

fn links_section(out: &mut String, p: &Page) {
    section_head(out, "links", "连接与同步", Some(p.status.links.len()));
    if p.status.links.is_empty() {
        out.push_str(
            "<p class=\"empty\">还没有连接：上级节点未配置，或下级尚未接入。</p></section>",
        );
        return;
    }
    out.push_str("<table><thead><tr><th>方向</th><th>对方</th><th>状态</th><th class=\"num\">待对方确认</th><th class=\"num\">待接收</th><th>最近通信</th><th>地址</th><th>最近错误</th></tr></thead><tbody>");
    for l in &p.status.links {
        let lag = |n: u64| {
            if n > 0 {
                format!("<td class=\"num lag\">{n}</td>")
            } else {
                "<td class=\"num\">0</td>".to_string()
            }
        };
        let _ = write!(
            out,
            "<tr class=\"link\"><td>{}</td><td>{}</td><td>{}</td>{}{}<td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(role_zh(&l.role)),
            committee(&l.peer_name, &l.peer),
            state_badge(&l.state, link_state_zh(&l.state)),
            lag(l.outbound_lag),
            lag(l.inbound_lag),
            ago(l.last_seen_ms, p.now_ms),
            esc(&l.address),
            esc(&l.last_error),
        );
    }
    out.push_str("</tbody></table><p class=\"meta\">待对方确认：本节点已有、对方尚未确认落盘的事件数；待接收：对方已有、本节点尚未收到的事件数。</p></section>");
}

fn quarantine_section(out: &mut String, p: &Page) {
    section_head(
        out,
        "quarantine",
        "隔离区（被拒收的事件）",
        Some(p.quarantine.entries.len()),
    );
    if p.quarantine.entries.is_empty() {
        out.push_str("<p class=\"empty\">隔离区为空：没有被拒收的事件。</p></section>");
        return;
    }
    out.push_str("<table><thead><tr><th>时间</th><th>来自</th><th>作者与序号</th><th>原因</th></tr></thead><tbody>");
    for q in &p.quarantine.entries {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td><span class=\"code\">{}</span> #{}</td><td>{}</td></tr>",
            cst_time(q.at_ms, true),
            esc(&q.received_from),
            esc(&q.origin),
            q.seq,
            esc(&q.reason),
        );
    }
    out.push_str("</tbody></table></section>");
}

fn head(out: &mut String, title: &str, refresh: bool) {
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{}<title>{}</title><style>{CSS}</style></head>",
        if refresh {
            format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">")
        } else {
            String::new()
        },
        esc(title)
    );
}

/// The whole console page.
pub fn page(p: &Page) -> String {
    let s = &p.status;
    let name = if s.name.is_empty() {
        "（未注册的委员会）"
    } else {
        &s.name
    };
    let mut out = String::with_capacity(32 * 1024);
    head(&mut out, &format!("{name} · 联动协商节点"), true);
    let within = subtree(&p.committees, &s.committee);
    let late = overdue(&p.topics, &within);
    let _ = write!(
        out,
        "<body><header><h1>{}<span class=\"code\">{}</span></h1>",
        esc(name),
        esc(&s.committee)
    );
    let mut meta = Vec::new();
    if !s.level.is_empty() {
        meta.push(esc(level_zh(&s.level)));
    } else {
        meta.push("尚未收到本会的注册：请上级运行 liandong committee register".into());
    }
    if !s.parent.is_empty() {
        let parent_name = p
            .committees
            .committees
            .iter()
            .find(|c| c.code == s.parent)
            .map(|c| c.name.as_str())
            .unwrap_or("");
        meta.push(format!("上级 {}", committee(parent_name, &s.parent)));
    }
    meta.push(format!("今天 {}", esc(&p.today)));
    meta.push(format!("每 {REFRESH_SECS} 秒自动刷新"));
    let _ = write!(out, "<p class=\"meta\">{}</p>", meta.join(" · "));
    let connected = s.links.iter().filter(|l| l.state == "connected").count();
    let open_tasks = p
        .tasks
        .tasks
        .iter()
        .filter(|a| !matches!(a.state.as_str(), "approved" | "cancelled"))
        .count();
    let _ = write!(
        out,
        "<ul class=\"stats\"><li><b>{}</b> 个议题</li><li><b>{open_tasks}</b> 项待办课题</li><li{}><b>{}</b> 项逾期</li><li{}>连接 <b>{connected}</b>/{}</li><li{}>隔离 <b>{}</b></li><li>事件 <b>{}</b></li></ul></header><main>",
        p.topics.topics.len(),
        if late.is_empty() { "" } else { " class=\"alert\"" },
        late.len(),
        if connected < s.links.len() { " class=\"alert\"" } else { "" },
        s.links.len(),
        if s.quarantined > 0 { " class=\"alert\"" } else { "" },
        s.quarantined,
        s.events,
    );
    overdue_section(&mut out, p, &late);
    tasks_section(&mut out, p);
    topics_section(&mut out, p);
    links_section(&mut out, p);
    notices_section(&mut out, p);
    quarantine_section(&mut out, p);
    let _ = writeln!(
        out,
        "</main><footer>liandong 联动 · 只读控制台 · 数据来自本节点的存储，生成于 {}（北京时间）</footer></body></html>",
        cst_time(p.now_ms, false)
    );
    out
}

/// Why the console refused the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token in the URL and no valid cookie.
    Missing,
    /// A token in the URL that is not this node's.
    Wrong,
}

/// The page shown without the credential: how to get in. `token_file`: where the node keeps
/// its token (`None` for a node whose token is in memory only: the demo, tests).
pub fn refused(why: Refusal, token_file: Option<&str>) -> String {
    let mut out = String::new();
    head(&mut out, "需要访问令牌 · 联动协商节点", false);
    out.push_str("<body><header><h1>需要访问令牌</h1><p class=\"meta\">liandong 联动 · 本节点的只读控制台</p></header><main><section>");
    if why == Refusal::Wrong {
        out.push_str("<p><b class=\"no\">令牌不正确。</b></p>");
    }
    match token_file {
        Some(path) => {
            let _ = write!(
                out,
                "<p>控制台只对持有本节点访问令牌的人开放。令牌由 <code>liandong init</code> 生成，保存在节点电脑上的这个文件中（仅文件所有者可读）：</p>\
                 <p class=\"mono\">{}</p>\
                 <p>在节点电脑上查看令牌（例如 <code>cat {}</code>），然后在本页地址后加上 <code>?token=令牌</code> 打开一次。浏览器会在本次会话中记住它，地址栏里不会留下令牌。</p>",
                esc(path),
                esc(path)
            );
        }
        None => out.push_str(
            "<p>控制台只对持有本节点访问令牌的人开放。本节点的令牌只保存在内存中（演示或测试节点）：<code>liandong demo --keep-running</code> 会打印每个节点带令牌的控制台地址。</p>",
        ),
    }
    out.push_str("<p>已经打开过？<a href=\"/\">重新载入本页</a>。</p>");
    out.push_str("<p class=\"meta\">The console needs this node&#39;s API token: open this address once with <code>?token=&lt;token&gt;</code>; the token is in the node&#39;s token file (<code>[node] api_token_file</code>, default <code>api.token</code> next to its config).</p></section></main></body></html>\n");
    out
}

/// A page for an error while reading the node.
pub fn failure(message: &str) -> String {
    let mut out = String::new();
    head(&mut out, "读取失败 · 联动协商节点", false);
    let _ = writeln!(
        out,
        "<body><header><h1>读取失败</h1></header><main><section><p>本节点的数据暂时无法读取：</p><p class=\"mono\">{}</p><p>请查看节点日志；<a href=\"/\">重试</a>。</p></section></main></body></html>",
        esc(message)
    );
    out
}

/// Anything but the console's one page.
pub fn not_found() -> String {
    let mut out = String::new();
    head(&mut out, "没有这个页面 · 联动协商节点", false);
    out.push_str("<body><header><h1>没有这个页面</h1></header><main><section><p><a href=\"/\">返回控制台</a></p></section></main></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(id: &str, title: &str, assignee: &str, state: &str, due: &str) -> pb::AssignmentView {
        pb::AssignmentView {
            id: id.into(),
            topic_id: "t1".into(),
            topic_title: "黄河流域生态保护专题调研".into(),
            assigner: "620000".into(),
            assigner_name: "甘肃省政协".into(),
            assignee: assignee.into(),
            assignee_name: format!("{assignee}政协"),
            title: title.into(),
            due_date: due.into(),
            weight: 1,
            state: state.into(),
            acknowledged: state != "issued",
            progress: 0.5,
            ..Default::default()
        }
    }

    fn sample() -> Page {
        let mut city = a(
            "a1",
            "兰州段水资源调研",
            "620100",
            "acknowledged",
            "2026-12-20",
        );
        let mut county = a("a2", "榆中县水土保持调研", "620123", "issued", "2026-11-01");
        county.overdue = true;
        let mut returned = a(
            "a3",
            "永登县节水灌溉调研",
            "620121",
            "returned",
            "2026-12-10",
        );
        returned.reviews.push(pb::ReviewView {
            version: 1,
            verdict: "return".into(),
            comment: "请补充<监测>数据".into(),
            reviewer: "620100".into(),
        });
        city.children = vec![county.clone(), returned];
        let committees = [
            ("620000", "甘肃省政协", ""),
            ("620100", "兰州市政协", "620000"),
            ("620123", "榆中县政协", "620100"),
            ("620121", "永登县政协", "620100"),
            ("620400", "白银市政协", "620000"),
            ("620422", "会宁县政协", "620400"),
        ];
        Page {
            status: pb::StatusView {
                committee: "620100".into(),
                name: "兰州市政协".into(),
                level: "city".into(),
                parent: "620000".into(),
                events: 42,
                links: vec![
                    pb::LinkView {
                        role: "parent".into(),
                        peer: "620000".into(),
                        peer_name: "甘肃省政协".into(),
                        address: "http://127.0.0.1:7400".into(),
                        state: "connected".into(),
                        last_seen_ms: 1_795_000_000_000 - 3_000,
                        ..Default::default()
                    },
                    pb::LinkView {
                        role: "child".into(),
                        peer: "620123".into(),
                        peer_name: "榆中县政协".into(),
                        state: "disconnected".into(),
                        outbound_lag: 7,
                        last_error: "connection <reset>".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            topics: pb::TopicList {
                topics: vec![pb::TopicView {
                    id: "t1".into(),
                    owner: "620000".into(),
                    owner_name: "甘肃省政协".into(),
                    title: "黄河流域生态保护专题调研".into(),
                    source: "party-government".into(),
                    form: "thematic".into(),
                    tier: "county-and-above".into(),
                    plan_year: 2026,
                    state: "published".into(),
                    progress: 0.37,
                    assignments: vec![city.clone()],
                    ..Default::default()
                }],
            },
            tasks: pb::TaskList { tasks: vec![city] },
            committees: pb::CommitteeList2 {
                committees: committees
                    .iter()
                    .map(|(code, name, parent)| pb::CommitteeView {
                        code: (*code).into(),
                        name: (*name).into(),
                        parent: (*parent).into(),
                        ..Default::default()
                    })
                    .collect(),
            },
            quarantine: pb::QuarantineList {
                entries: vec![pb::QuarantineEntry {
                    id: "q1".into(),
                    reason: "bad signature <script>alert(1)</script>".into(),
                    origin: "620123".into(),
                    seq: 3,
                    received_from: "620123".into(),
                    at_ms: 1_795_000_000_000,
                    ..Default::default()
                }],
            },
            today: "2026-11-23".into(),
            now_ms: 1_795_000_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("黄河"), "黄河");
    }

    #[test]
    fn the_page_is_chinese_html_with_the_tree_tasks_links_and_quarantine() {
        let html = page(&sample());
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<html lang=\"zh-CN\">"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<title>兰州市政协 · 联动协商节点</title>"));
        // the progress tree, nested
        assert!(html.contains("黄河流域生态保护专题调研"));
        let tree = &html[html.find("id=\"topics\"").expect("topics section")..];
        let city = tree.find("兰州段水资源调研").expect("city assignment");
        let county = tree.find("榆中县水土保持调研").expect("county assignment");
        assert!(city < county);
        assert!(html.contains(
            "<ul class=\"tree\"><li><div class=\"row\"><span class=\"t\">兰州段水资源调研"
        ));
        assert!(
            html.contains("<ul><li class=\"late\">"),
            "the overdue child is marked"
        );
        assert!(html.contains("签收 ✓") && html.contains("签收 ✗"));
        assert!(
            html.contains("逾期 22 天"),
            "2026-11-01 is 22 days before 2026-11-23"
        );
        assert!(html.contains("style=\"width:37%\""), "topic progress bar");
        assert!(html.contains("进行中") && html.contains("党政点题") && html.contains("专题协商"));
        assert!(html.contains("退回意见：请补充&lt;监测&gt;数据"));
        // links, with lag and errors escaped
        assert!(html.contains("<tr class=\"link\"><td>上级</td><td>甘肃省政协"));
        assert!(html.contains("已连接") && html.contains("未连接"));
        assert!(html.contains("<td class=\"num lag\">7</td>"));
        assert!(html.contains("3 秒前"));
        assert!(html.contains("connection &lt;reset&gt;"));
        // quarantine: the reason is text, never markup
        assert!(html.contains("bad signature &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script"));
        // the header counts
        assert!(html.contains("<li class=\"alert\"><b>1</b> 项逾期</li>"));
    }

    #[test]
    fn a_task_shows_the_progress_rolled_up_in_its_tree() {
        let mut p = sample();
        p.topics.topics[0].assignments[0].progress = 0.34;
        p.tasks.tasks[0].progress = 0.1;
        let html = page(&p);
        let tasks = &html[html.find("id=\"tasks\"").expect("tasks")
            ..html.find("id=\"topics\"").expect("topics")];
        assert!(tasks.contains("width:34%"), "{tasks}");
        assert!(!tasks.contains("width:10%"));
    }

    #[test]
    fn overdue_lists_the_subtree_only() {
        let mut p = sample();
        let mut far = a("a9", "会宁县调研", "620422", "issued", "2026-10-01");
        far.overdue = true;
        p.topics.topics[0].assignments.push(far);
        let within = subtree(&p.committees, "620100");
        assert!(within.contains("620123") && within.contains("620100"));
        assert!(!within.contains("620422") && !within.contains("620000"));
        let late: Vec<&str> = overdue(&p.topics, &within)
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(late, vec!["a2"]);
        let all = subtree(&p.committees, "620000");
        let late: Vec<&str> = overdue(&p.topics, &all)
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(late, vec!["a9", "a2"], "most overdue first");
    }

    #[test]
    fn hostile_text_never_becomes_markup_or_a_class() {
        let mut p = sample();
        p.status.name = "<img src=x onerror=alert(1)>".into();
        p.topics.topics[0].title = "\"><script>x</script>".into();
        p.topics.topics[0].state = "published\" onmouseover=\"x".into();
        p.status.links[0].state = "x\"><b>".into();
        let html = page(&p);
        assert!(!html.contains("<img"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("onmouseover=\"x"));
        assert!(html.contains("s-other"));
    }

    #[test]
    fn progress_is_clamped_and_dates_are_counted() {
        assert_eq!(pct(f64::NAN), 0);
        assert_eq!(pct(1.7), 100);
        assert_eq!(pct(-0.2), 0);
        assert_eq!(pct(0.805), 81);
        assert_eq!(days_overdue("2026-11-01", "2026-11-23"), 22);
        assert_eq!(days_overdue("2026-02-28", "2026-03-01"), 1);
        assert_eq!(days_overdue("2024-02-28", "2024-03-01"), 2, "leap year");
        assert_eq!(days_overdue("2026-12-01", "2026-11-23"), 0);
        assert_eq!(days_overdue("soon", "2026-11-23"), 0);
        assert_eq!(days("1970-01-01"), Some(0));
        assert_eq!(cst_time(0, true), "1970-01-01 08:00");
    }

    #[test]
    fn empty_node_reads_sensibly() {
        let html = page(&Page {
            status: pb::StatusView {
                committee: "620422".into(),
                ..Default::default()
            },
            today: "2026-11-23".into(),
            ..Default::default()
        });
        assert!(html.contains("尚未收到本会的注册"));
        assert!(html.contains("没有下达给本会的课题"));
        assert!(html.contains("隔离区为空"));
        assert!(html.contains("还没有连接"));
    }

    #[test]
    fn the_refusal_says_where_the_token_is() {
        let html = refused(Refusal::Missing, Some("/srv/<x>/api.token"));
        assert!(html.contains("需要访问令牌"));
        assert!(html.contains("/srv/&lt;x&gt;/api.token"));
        assert!(html.contains("?token="));
        assert!(!html.contains("令牌不正确"));
        assert!(refused(Refusal::Wrong, None).contains("令牌不正确"));
        assert!(refused(Refusal::Missing, None).contains("--keep-running"));
    }
}
