//! `Committee`: the local API of one node, for the CLI and a committee's own applications.
use std::pin::Pin;

use futures::Stream;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::pb::{self, committee_server::Committee};

pub struct CommitteeService {
    pub node: Node,
}

type R<T> = Result<Response<T>, Status>;

fn ok<T>(r: crate::Result<T>) -> R<T> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl Committee for CommitteeService {
    async fn register_committee(&self, r: Request<pb::RegisterCommitteeRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self
            .node
            .register_committee(&r.code, &r.name, &r.public_key)
            .await)
    }
    async fn rotate_key(&self, r: Request<pb::RotateKeyRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self.node.rotate_key(&r.code, &r.public_key).await)
    }
    async fn revoke_key(&self, r: Request<pb::RevokeKeyRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        let through = (r.valid_through_seq > 0).then_some(r.valid_through_seq);
        ok(self
            .node
            .revoke_key_through(&r.code, &r.reason, through)
            .await)
    }
    async fn show_quarantine(&self, r: Request<pb::QuarantineRef>) -> R<pb::QuarantineEntry> {
        ok(self.node.quarantine_entry(&r.into_inner().id))
    }
    async fn list_committees(&self, _: Request<pb::Empty>) -> R<pb::CommitteeList2> {
        Ok(Response::new(self.node.committee_list()))
    }
    async fn create_topic(&self, r: Request<pb::CreateTopicRequest>) -> R<pb::Receipt> {
        ok(self.node.create_topic(r.into_inner()).await)
    }
    async fn publish_topic(&self, r: Request<pb::TopicRef>) -> R<pb::Receipt> {
        ok(self.node.publish_topic(&r.into_inner().topic_id).await)
    }
    async fn conclude_topic(&self, r: Request<pb::CloseTopicRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self.node.close_topic(&r.topic_id, &r.text, false).await)
    }
    async fn withdraw_topic(&self, r: Request<pb::CloseTopicRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self.node.close_topic(&r.topic_id, &r.text, true).await)
    }
    async fn get_topic(&self, r: Request<pb::TopicRef>) -> R<pb::TopicView> {
        ok(self.node.topic_view(&r.into_inner().topic_id))
    }
    async fn list_topics(&self, _: Request<pb::Empty>) -> R<pb::TopicList> {
        ok(self.node.topic_list())
    }
    async fn assign(&self, r: Request<pb::AssignRequest>) -> R<pb::Receipt> {
        ok(self.node.assign(r.into_inner()).await)
    }
    async fn cancel_assignment(&self, r: Request<pb::CancelAssignmentRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self
            .node
            .cancel_assignment(&r.assignment_id, &r.reason)
            .await)
    }
    async fn list_tasks(&self, _: Request<pb::Empty>) -> R<pb::TaskList> {
        ok(self.node.tasks())
    }
    async fn acknowledge(&self, r: Request<pb::AssignmentRef>) -> R<pb::Receipt> {
        ok(self.node.acknowledge(&r.into_inner().assignment_id).await)
    }
    async fn submit(&self, r: Request<pb::SubmitRequest>) -> R<pb::Receipt> {
        ok(self.node.submit(r.into_inner()).await)
    }
    async fn review(&self, r: Request<pb::ReviewRequest>) -> R<pb::Receipt> {
        ok(self.node.review(r.into_inner()).await)
    }
    async fn send_guidance(&self, r: Request<pb::SendGuidanceRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self.node.send_guidance(&r.title, &r.body, &r.to).await)
    }
    async fn list_guidance(&self, _: Request<pb::Empty>) -> R<pb::GuidanceList> {
        ok(self.node.guidance_list())
    }
    async fn acknowledge_guidance(&self, r: Request<pb::GuidanceRef>) -> R<pb::Receipt> {
        ok(self
            .node
            .acknowledge_guidance(&r.into_inner().guidance_id)
            .await)
    }
    async fn send_report(&self, r: Request<pb::SendReportRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self
            .node
            .send_report(&r.to, &r.kind, &r.title, &r.body)
            .await)
    }
    async fn list_reports(&self, _: Request<pb::Empty>) -> R<pb::ReportList> {
        ok(self.node.report_list())
    }
    async fn acknowledge_report(&self, r: Request<pb::ReportRef>) -> R<pb::Receipt> {
        ok(self
            .node
            .acknowledge_report(&r.into_inner().report_id)
            .await)
    }
    async fn status(&self, _: Request<pb::Empty>) -> R<pb::StatusView> {
        ok(self.node.status())
    }
    async fn list_quarantine(&self, _: Request<pb::Empty>) -> R<pb::QuarantineList> {
        ok(self.node.quarantine_view())
    }

    // ---- the consultation cycle (issue 4A) ----
    async fn submit_topic_proposal(&self, r: Request<pb::TopicProposalRequest>) -> R<pb::Receipt> {
        ok(self.node.submit_proposal(r.into_inner()).await)
    }
    async fn decide_topic_proposal(
        &self,
        r: Request<pb::TopicProposalDecisionRequest>,
    ) -> R<pb::TopicProposalDecisionReply> {
        ok(self.node.decide_proposal(r.into_inner()).await)
    }
    async fn list_topic_proposals(&self, _: Request<pb::Empty>) -> R<pb::TopicProposalList> {
        ok(self.node.proposal_list())
    }
    async fn change_plan(&self, r: Request<pb::PlanChangeRequest>) -> R<pb::Receipt> {
        ok(self.node.change_plan(r.into_inner()).await)
    }
    async fn adopt_plan(&self, r: Request<pb::PlanAdoptRequest>) -> R<pb::Receipt> {
        ok(self.node.adopt_plan(r.into_inner()).await)
    }
    async fn get_plan(&self, r: Request<pb::PlanRef>) -> R<pb::PlanView> {
        ok(self.node.plan(r.into_inner()))
    }
    async fn list_plans(&self, _: Request<pb::Empty>) -> R<pb::PlanList> {
        ok(self.node.plan_list())
    }
    async fn schedule_meeting(&self, r: Request<pb::MeetingScheduleRequest>) -> R<pb::Receipt> {
        ok(self.node.schedule_meeting(r.into_inner()).await)
    }
    async fn contribute_to_meeting(
        &self,
        r: Request<pb::MeetingContributionRequest>,
    ) -> R<pb::Receipt> {
        ok(self.node.contribute(r.into_inner()).await)
    }
    async fn conclude_meeting(
        &self,
        r: Request<pb::MeetingConcludeRequest>,
    ) -> R<pb::MeetingConcludeReply> {
        ok(self.node.conclude_meeting(r.into_inner()).await)
    }
    async fn cancel_meeting(&self, r: Request<pb::MeetingCancelRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self.node.cancel_meeting(&r.meeting_id, &r.reason).await)
    }
    async fn get_meeting(&self, r: Request<pb::MeetingRef>) -> R<pb::MeetingView> {
        ok(self.node.meeting_view(&r.into_inner().meeting_id))
    }
    async fn list_meetings(&self, _: Request<pb::Empty>) -> R<pb::MeetingList> {
        ok(self.node.meeting_list())
    }
    async fn add_recommendation(&self, r: Request<pb::RecommendationAddRequest>) -> R<pb::Receipt> {
        ok(self.node.add_recommendation(r.into_inner()).await)
    }
    async fn handle_recommendation(
        &self,
        r: Request<pb::RecommendationHandleRequest>,
    ) -> R<pb::Receipt> {
        ok(self.node.handle_recommendation(r.into_inner()).await)
    }
    async fn update_recommendation(
        &self,
        r: Request<pb::RecommendationUpdateRequest>,
    ) -> R<pb::Receipt> {
        ok(self.node.update_recommendation(r.into_inner()).await)
    }
    async fn record_recommendation_feedback(
        &self,
        r: Request<pb::RecommendationFeedbackRequest>,
    ) -> R<pb::Receipt> {
        ok(self.node.record_feedback(r.into_inner()).await)
    }
    async fn evaluate_recommendation(
        &self,
        r: Request<pb::RecommendationEvaluateRequest>,
    ) -> R<pb::Receipt> {
        ok(self.node.evaluate_recommendation(r.into_inner()).await)
    }
    async fn list_recommendations(
        &self,
        r: Request<pb::RecommendationListRequest>,
    ) -> R<pb::RecommendationList> {
        ok(self.node.recommendation_list(&r.into_inner().topic_id))
    }
    async fn hold_re_consultation(
        &self,
        r: Request<pb::ReConsultationRequest>,
    ) -> R<pb::ReConsultationReply> {
        ok(self.node.hold_reconsultation(r.into_inner()).await)
    }
    async fn record_evaluation(&self, r: Request<pb::EvaluationRequest>) -> R<pb::Receipt> {
        ok(self.node.record_evaluation(r.into_inner()).await)
    }
    async fn list_evaluations(&self, _: Request<pb::Empty>) -> R<pb::EvaluationList> {
        ok(self.node.evaluation_list())
    }
    async fn publish_results(&self, r: Request<pb::PublicationRequest>) -> R<pb::Receipt> {
        ok(self.node.publish_results(r.into_inner()).await)
    }
    async fn list_publications(&self, _: Request<pb::Empty>) -> R<pb::PublicationList> {
        ok(self.node.publication_list())
    }
    async fn get_topic_cycle(&self, r: Request<pb::TopicRef>) -> R<pb::TopicCycleView> {
        ok(self.node.topic_cycle(&r.into_inner().topic_id))
    }
    async fn list_overdue(&self, _: Request<pb::Empty>) -> R<pb::OverdueList> {
        ok(self.node.overdue())
    }

    async fn propose_charter(&self, r: Request<pb::CharterProposalRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        let members: Vec<crate::node::lateral::MemberInput> = r
            .members
            .into_iter()
            .map(|m| crate::node::lateral::MemberInput {
                code: m.code,
                name: m.name,
                key: m.public_key,
            })
            .collect();
        let hosts: Vec<(u32, String)> = r.hosts.into_iter().map(|h| (h.year, h.code)).collect();
        ok(self
            .node
            .propose_charter(&r.group_id, &r.name, &members, &hosts)
            .await)
    }
    async fn endorse_charter(&self, r: Request<pb::CharterEndorseRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self.node.endorse_charter(&r.group_id, &r.digest).await)
    }
    async fn list_groups(&self, _: Request<pb::Empty>) -> R<pb::GroupList> {
        ok(self.node.groups_view())
    }
    async fn convene_joint_meeting(&self, r: Request<pb::JointConveneRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self
            .node
            .convene_joint_meeting(
                &r.group_id,
                r.year,
                &r.theme,
                &r.description,
                &r.date,
                &r.place,
                r.include_subtrees,
            )
            .await)
    }
    async fn contribute_joint(&self, r: Request<pb::JointContributeRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self
            .node
            .contribute_joint(
                &r.meeting_id,
                &r.contribution_id,
                &r.kind,
                &r.title,
                &r.text,
                r.recommendations,
                r.attachment_digests,
            )
            .await)
    }
    async fn draft_joint_report(&self, r: Request<pb::JointDraftRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self
            .node
            .draft_joint_report(&r.meeting_id, &r.title, &r.text, r.recommendations)
            .await)
    }
    async fn comment_joint_report(&self, r: Request<pb::JointCommentRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self
            .node
            .comment_joint_report(&r.meeting_id, r.version, r.agree, &r.text)
            .await)
    }
    async fn finalize_joint_report(&self, r: Request<pb::JointMeetingRef>) -> R<pb::Receipt> {
        ok(self
            .node
            .finalize_joint_report(&r.into_inner().meeting_id)
            .await)
    }
    async fn send_joint_report(&self, r: Request<pb::JointSendRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self
            .node
            .send_joint_report(
                &r.meeting_id,
                &r.destination,
                &r.recipient,
                &r.reference,
                &r.date,
            )
            .await)
    }
    async fn publish_rollup(&self, r: Request<pb::JointRollupRequest>) -> R<pb::Receipt> {
        let r = r.into_inner();
        ok(self
            .node
            .publish_rollup(&r.meeting_id, &r.topic_id, &r.note)
            .await)
    }
    async fn get_joint_meeting(&self, r: Request<pb::JointMeetingRef>) -> R<pb::JointMeetingView> {
        ok(self.node.joint_meeting_view(&r.into_inner().meeting_id))
    }
    async fn list_joint_meetings(&self, _: Request<pb::Empty>) -> R<pb::JointMeetingList> {
        ok(self.node.joint_meetings())
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::Change, Status>> + Send>>;

    async fn watch(&self, _: Request<pb::Empty>) -> R<Self::WatchStream> {
        let changes = BroadcastStream::new(self.node.subscribe_changes()).map(|c| match c {
            Ok(change) => Ok(change),
            Err(BroadcastStreamRecvError::Lagged(n)) => Err(Status::data_loss(format!(
                "the watcher fell {n} changes behind; reconnect and re-read state"
            ))),
        });
        Ok(Response::new(Box::pin(changes)))
    }
}
