//! Progress of long work for people: a bar on a terminal (indicatif), plain lines otherwise
//! (a log file or the journal). Export, import and verify use [`Progress`]; `serve` reports
//! its catch-up from the parent with [`report_catch_up`].
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crate::node::Node;

/// Progress for people: a bar on a terminal, a line every few seconds otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    phase: String,
    last_line: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            bar: None,
            phase: String::new(),
            last_line: Instant::now(),
        }
    }

    pub fn update(&mut self, phase: &str, done: u64, total: u64) {
        if std::io::stderr().is_terminal() {
            if self.phase != phase {
                if let Some(bar) = self.bar.take() {
                    bar.finish();
                }
                let bar = indicatif::ProgressBar::new(total);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg:>20} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_message(phase.to_string());
                self.bar = Some(bar);
                self.phase = phase.to_string();
            }
            if let Some(bar) = &self.bar {
                bar.set_length(total.max(done));
                bar.set_position(done);
            }
            return;
        }
        let phase_changed = self.phase != phase;
        if phase_changed || done >= total || self.last_line.elapsed() >= Duration::from_secs(5) {
            eprintln!("{phase}: {done} of {total}");
            self.last_line = Instant::now();
            self.phase = phase.to_string();
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

/// Shows the catch-up of the link to `parent` after start-up (the session marks it in the
/// link's status, and logs its start and end): a bar on a terminal, a line every few seconds
/// otherwise. Returns once it is done, or when no catch-up started within a minute of the
/// link coming up (the node was up to date, or the link is down: `status` says why).
pub async fn report_catch_up(node: Node, parent: String) {
    let mut shown: Option<Progress> = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut up_since: Option<Instant> = None;
    loop {
        ticker.tick().await;
        if node.is_shutting_down() {
            return;
        }
        let Some(link) = node.links().get(&parent).cloned() else {
            continue;
        };
        if link.state == "connected" && up_since.is_none() {
            up_since = Some(Instant::now());
        }
        match (link.catching_up, &mut shown) {
            (Some(c), shown) => {
                let p = shown.get_or_insert_with(Progress::new);
                p.update(
                    &format!("catching up from {parent}"),
                    link.received_position.saturating_sub(c.from),
                    c.to - c.from,
                );
            }
            (None, Some(p)) => {
                p.finish();
                return;
            }
            (None, None) => {
                if up_since.is_some_and(|t| t.elapsed() > Duration::from_secs(60))
                    || link.session_batches > 0
                {
                    return;
                }
            }
        }
    }
}
