//! What `grpcurl` and a load balancer see: gRPC health (SERVING while the node is open,
//! NOT_SERVING once it shuts down) and server reflection, on both the Federation and the
//! local Committee servers.
mod common;

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use common::*;
use prost::Message;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

use tonic::transport::Channel;

/// The local API's port: plain HTTP/2 on loopback.
async fn channel(url: &str) -> Result<Channel> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect()
        .await?)
}

/// The Federation port: mutual TLS, as 兰州's child 榆中 would dial it (grpcurl needs the
/// same: `-cacert ca.crt -cert node.crt -key node.key.pem`).
async fn federation_channel(fed: &liandong::fixture::Federation) -> Result<Channel> {
    let address = fed.running(LANZHOU)?.federation_url();
    Ok(liandong::sync::TonicConnector::new(fed.transport(YUZHONG)?)
        .channel(LANZHOU, &address)
        .await?)
}

/// One reflection request, one response.
async fn reflect(ch: &Channel, request: MessageRequest) -> Result<MessageResponse> {
    let mut client = ServerReflectionClient::new(ch.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await?
        .into_inner();
    let first = responses
        .message()
        .await?
        .context("the reflection stream ended without an answer")?;
    first
        .message_response
        .context("a reflection answer without a response")
}

async fn services(ch: &Channel) -> Result<Vec<String>> {
    match reflect(ch, MessageRequest::ListServices(String::new())).await? {
        MessageResponse::ListServicesResponse(l) => {
            let mut names: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
            names.sort();
            Ok(names)
        }
        other => bail!("unexpected answer to ListServices: {other:?}"),
    }
}

/// The methods of `service`, from the file descriptor reflection hands out for it.
async fn methods(ch: &Channel, service: &str) -> Result<Vec<String>> {
    let files = match reflect(ch, MessageRequest::FileContainingSymbol(service.into())).await? {
        MessageResponse::FileDescriptorResponse(f) => f.file_descriptor_proto,
        other => bail!("unexpected answer to FileContainingSymbol: {other:?}"),
    };
    let short = service.rsplit('.').next().unwrap_or(service);
    for bytes in files {
        let file = prost_types::FileDescriptorProto::decode(bytes.as_slice())?;
        if let Some(s) = file.service.iter().find(|s| s.name() == short) {
            return Ok(s.method.iter().map(|m| m.name().to_string()).collect());
        }
    }
    bail!("no descriptor of {service}")
}

async fn health(ch: &Channel, service: &str) -> Result<ServingStatus> {
    let mut client = HealthClient::new(ch.clone());
    let r = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?
        .into_inner();
    Ok(r.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_and_describes_the_services_of_each_server() -> Result<()> {
    let fed = gansu_federation(&[]).await?;
    let federation = federation_channel(&fed).await?;
    let api = channel(&fed.running(LANZHOU)?.api_url()).await?;

    assert_eq!(
        services(&federation).await?,
        vec![
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "liandong.v1.Federation",
        ]
    );
    assert_eq!(
        services(&api).await?,
        vec![
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "liandong.v1.Committee",
        ]
    );
    assert_eq!(
        methods(&federation, "liandong.v1.Federation").await?,
        vec!["Sync"]
    );
    let api_methods = methods(&api, "liandong.v1.Committee").await?;
    for m in ["CreateTopic", "Assign", "Status", "Watch", "ListQuarantine"] {
        ensure!(
            api_methods.iter().any(|x| x == m),
            "Committee has {m}: {api_methods:?}"
        );
    }
    // The message types the methods use are there too (grpcurl describes and encodes them).
    match reflect(
        &api,
        MessageRequest::FileContainingSymbol("liandong.v1.StatusView".into()),
    )
    .await?
    {
        MessageResponse::FileDescriptorResponse(f) => ensure!(!f.file_descriptor_proto.is_empty()),
        other => bail!("unexpected answer: {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_while_open_and_not_serving_at_shutdown() -> Result<()> {
    let mut fed = gansu_federation(&[]).await?;
    let federation = federation_channel(&fed).await?;
    let api = channel(&fed.running(LANZHOU)?.api_url()).await?;
    for (port, ch) in [("federation", &federation), ("api", &api)] {
        for service in ["", "liandong.v1.Federation", "liandong.v1.Committee"] {
            assert_eq!(
                health(ch, service).await?,
                ServingStatus::Serving,
                "{port} {service:?}"
            );
        }
    }
    let err = health(&api, "no.such.Service")
        .await
        .expect_err("an unknown service is NOT_FOUND");
    ensure!(
        err.to_string().contains("NotFound") || err.to_string().contains("not found"),
        "{err}"
    );

    // A watcher sees the node go NOT_SERVING when it starts shutting down.
    let mut client = HealthClient::new(api.clone());
    let mut watch = client
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    let first = watch.message().await?.context("a first status")?;
    assert_eq!(first.status(), ServingStatus::Serving);
    let stopping = tokio::spawn(async move {
        fed.stop(LANZHOU).await;
        fed
    });
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .context("no status within 10 s of the shutdown")??
        .context("the stream ended before saying NOT_SERVING")?;
    assert_eq!(next.status(), ServingStatus::NotServing);
    drop(watch);
    let _fed = stopping.await?;
    Ok(())
}
