//! 指导意见 (downward guidance) and 报送 (upward reports), each with the recipients'
//! acknowledgements, which make end-to-end delivery visible to the sender.
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Machine;
use crate::domain::{audience, Fact, Roster};
use crate::pb::{self, event::Body};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Guidance {
    pub issuer: Option<String>,
    pub title: String,
    pub body: String,
    /// The audience of the issue, for checking who may acknowledge.
    pub audience: Option<pb::audience::Kind>,
    pub acknowledged_by: BTreeSet<String>,
}

impl Machine for Guidance {
    fn step(&mut self, fact: &Fact, roster: &Roster) -> Result<(), String> {
        match &fact.body {
            Body::GuidanceIssued(g) => {
                if self.issuer.is_some() {
                    return Err("the guidance was already issued".into());
                }
                self.issuer = Some(fact.origin.clone());
                self.title = g.title.clone();
                self.body = g.body.clone();
                self.audience = Some(fact.audience.clone());
                Ok(())
            }
            Body::GuidanceAcknowledged(a) => {
                let Some(issuer) = &self.issuer else {
                    return Err("the guidance itself has not arrived here (yet)".into());
                };
                if *issuer != a.issuer {
                    return Err(format!(
                        "the acknowledgement names {} as issuer, but {issuer} issued it",
                        a.issuer
                    ));
                }
                let Some(aud) = &self.audience else {
                    return Err("the guidance's audience is unknown here".into());
                };
                if fact.origin == *issuer
                    || !audience::visible_to(roster, aud, issuer, &fact.origin)
                {
                    return Err(format!(
                        "{} is not a recipient of this guidance",
                        fact.origin
                    ));
                }
                if !self.acknowledged_by.insert(fact.origin.clone()) {
                    return Err("already acknowledged".into());
                }
                Ok(())
            }
            other => Err(format!(
                "{} is not a guidance event",
                crate::event::kind_name(other)
            )),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub sender: Option<String>,
    pub to: String,
    pub kind: i32,
    pub title: String,
    pub body: String,
    pub acknowledged: bool,
}

impl Machine for Report {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        match &fact.body {
            Body::ReportSent(r) => {
                if self.sender.is_some() {
                    return Err("the report was already sent".into());
                }
                self.sender = Some(fact.origin.clone());
                self.to = r.to.clone();
                self.kind = r.kind;
                self.title = r.title.clone();
                self.body = r.body.clone();
                Ok(())
            }
            Body::ReportAcknowledged(a) => {
                let Some(sender) = &self.sender else {
                    return Err("the report itself has not arrived here (yet)".into());
                };
                if fact.origin != self.to || a.sender != *sender {
                    return Err(format!(
                        "only the addressee {} acknowledges this report, not {}",
                        self.to, fact.origin
                    ));
                }
                if self.acknowledged {
                    return Err("already acknowledged".into());
                }
                self.acknowledged = true;
                Ok(())
            }
            other => Err(format!(
                "{} is not a report event",
                crate::event::kind_name(other)
            )),
        }
    }
}
