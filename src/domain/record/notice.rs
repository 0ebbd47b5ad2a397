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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::testkit::*;
    use crate::domain::record::{fold, Folded};
    use crate::domain::roster::tests::gansu;
    use crate::pb::audience::Kind;
    use proptest::prelude::*;

    fn refusals<M>(f: &Folded<M>) -> Vec<String> {
        f.history.iter().filter_map(|h| h.refused.clone()).collect()
    }

    /// 兰州市's notice to its subtree, acknowledged by its two counties, with noise: an ack by
    /// a county of another city, a second ack, an ack by the issuer itself, one naming the
    /// wrong issuer, and a second issue.
    fn guidance_history() -> Vec<crate::domain::Fact> {
        let id = uuid::Uuid::now_v7().as_bytes().to_vec();
        let ack = |origin: &str, seq, hlc, issuer: &str| {
            fact(
                origin,
                seq,
                hlc,
                to(&[issuer]),
                Body::GuidanceAcknowledged(pb::GuidanceAcknowledged {
                    guidance_id: id.clone(),
                    issuer: issuer.into(),
                }),
            )
        };
        let issue = |seq, hlc, title: &str| {
            fact(
                "620100",
                seq,
                hlc,
                Kind::Subtree("620100".into()),
                Body::GuidanceIssued(pb::GuidanceIssued {
                    guidance_id: id.clone(),
                    title: title.into(),
                    body: "正文".into(),
                }),
            )
        };
        vec![
            issue(1, 10, "关于开展联合调研的通知"),
            ack("620123", 1, 20, "620100"),
            ack("620121", 1, 21, "620100"),
            ack("620421", 1, 22, "620100"),
            ack("620123", 2, 30, "620100"),
            ack("620100", 2, 31, "620100"),
            ack("620121", 2, 32, "620000"),
            issue(3, 40, "再发一次"),
        ]
    }

    #[test]
    fn guidance_is_acknowledged_once_by_each_recipient_only() {
        let f: Folded<Guidance> = fold(&guidance_history(), &gansu());
        assert_eq!(f.record.issuer.as_deref(), Some("620100"));
        assert_eq!(f.record.title, "关于开展联合调研的通知");
        assert_eq!(
            f.record.acknowledged_by.iter().collect::<Vec<_>>(),
            ["620121", "620123"]
        );
        let refused = refusals(&f);
        assert_eq!(refused.len(), 5, "{refused:?}");
        assert!(
            refused[0].contains("620421 is not a recipient"),
            "{}",
            refused[0]
        );
        assert!(
            refused[1].contains("already acknowledged"),
            "{}",
            refused[1]
        );
        assert!(
            refused[2].contains("620100 is not a recipient"),
            "{}",
            refused[2]
        );
        assert!(
            refused[3].contains("names 620000 as issuer"),
            "{}",
            refused[3]
        );
        assert!(refused[4].contains("already issued"), "{}", refused[4]);
    }

    #[test]
    fn an_acknowledgement_before_its_guidance_waits_for_it() {
        let h = guidance_history();
        let mut f: Folded<Guidance> = Folded::default();
        f.apply(&h[1], &gansu());
        assert!(f.record.acknowledged_by.is_empty());
        let f: Folded<Guidance> = fold(&[h[1].clone(), h[0].clone()], &gansu());
        assert!(f.record.acknowledged_by.contains("620123"));
    }

    /// 靖远县's report to the province, acknowledged by the province; noise: an ack by the
    /// relaying city, one naming another sender, a second ack, a second send.
    fn report_history() -> Vec<crate::domain::Fact> {
        let id = uuid::Uuid::now_v7().as_bytes().to_vec();
        let ack = |origin: &str, seq, hlc, sender: &str| {
            fact(
                origin,
                seq,
                hlc,
                to(&[sender]),
                Body::ReportAcknowledged(pb::ReportAcknowledged {
                    report_id: id.clone(),
                    sender: sender.into(),
                }),
            )
        };
        let send = |seq, hlc| {
            fact(
                "620421",
                seq,
                hlc,
                Kind::Ancestors("620000".into()),
                Body::ReportSent(pb::ReportSent {
                    report_id: id.clone(),
                    to: "620000".into(),
                    kind: pb::ReportKind::PublicOpinion as i32,
                    title: "关于沿黄乡镇饮水安全的社情民意信息".into(),
                    body: "……".into(),
                }),
            )
        };
        vec![
            send(1, 10),
            ack("620400", 1, 20, "620421"),
            ack("620000", 1, 30, "620422"),
            ack("620000", 2, 31, "620421"),
            ack("620000", 3, 32, "620421"),
            send(2, 40),
        ]
    }

    #[test]
    fn only_the_addressee_acknowledges_a_report_once() {
        let f: Folded<Report> = fold(&report_history(), &gansu());
        assert_eq!(f.record.sender.as_deref(), Some("620421"));
        assert!(f.record.acknowledged);
        let refused = refusals(&f);
        assert_eq!(refused.len(), 4, "{refused:?}");
        assert!(refused[0].contains("not 620400"), "{}", refused[0]);
        assert!(refused[1].contains("only the addressee"), "{}", refused[1]);
        assert!(
            refused[2].contains("already acknowledged"),
            "{}",
            refused[2]
        );
        assert!(refused[3].contains("already sent"), "{}", refused[3]);
    }

    proptest! {
        #[test]
        fn guidance_any_arrival_order_gives_the_state_of_the_set(
            perm in Just(guidance_history()).prop_shuffle(),
            dups in proptest::collection::vec(0usize..8, 0..5),
        ) {
            let r = gansu();
            let expected: Folded<Guidance> = fold(&sorted(&perm), &r);
            prop_assert_eq!(expected.record.acknowledged_by.len(), 2);
            let arrivals = with_duplicates(&perm, &dups);
            prop_assert_eq!(&arrive::<Guidance>(&arrivals, &r), &expected);
            prop_assert_eq!(&fold::<Guidance>(&arrivals, &r), &expected);
        }

        #[test]
        fn report_any_arrival_order_gives_the_state_of_the_set(
            perm in Just(report_history()).prop_shuffle(),
            dups in proptest::collection::vec(0usize..6, 0..4),
        ) {
            let r = gansu();
            let expected: Folded<Report> = fold(&sorted(&perm), &r);
            prop_assert!(expected.record.acknowledged);
            let arrivals = with_duplicates(&perm, &dups);
            prop_assert_eq!(&arrive::<Report>(&arrivals, &r), &expected);
            prop_assert_eq!(&fold::<Report>(&arrivals, &r), &expected);
        }
    }
}
