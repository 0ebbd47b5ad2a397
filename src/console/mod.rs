//! 控制台: a read-only web page for people, served by the node on its local API address, next
//! to the gRPC `Committee` service (same port: tonic's server carries these axum routes and
//! accepts HTTP/1.1 for browsers).
//!
//! Access takes the local API's token. A browser cannot send a bearer header, so the page
//! accepts `?token=…` once, sets an HttpOnly, SameSite=Strict cookie and redirects to the
//! clean URL (the token does not stay in the address bar or the history). Without a valid
//! cookie it answers 401 with a short page that says where the token is. No scripts; every
//! response forbids framing, caching and referrers. The HTML itself is in [`render`].
pub mod render;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tonic::service::Routes;

use crate::api::auth::ApiCredential;
use crate::node::Node;

struct Console {
    node: Node,
    credential: ApiCredential,
    /// Cookies are per host, not per port: several nodes on one machine each need their own.
    cookie: String,
}

/// The cookie that carries the token for the node of `code`.
pub fn cookie_name(code: &str) -> String {
    format!("liandong_{code}")
}

/// Adds the console (`GET /`) to the gRPC routes of the local API, and a fallback that answers
/// browsers with 404 and gRPC clients with UNIMPLEMENTED.
pub fn routes(grpc: Routes, node: Node, credential: ApiCredential) -> Routes {
    let state = Arc::new(Console {
        cookie: cookie_name(node.code()),
        node,
        credential,
    });
    let console = axum::Router::new().route("/", get(index)).with_state(state);
    Routes::from(grpc.into_axum_router().merge(console).fallback(fallback))
}

/// Headers on every console response.
fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// The value of `name` in a query string (tokens need no percent-decoding: they are made of
/// unreserved characters only).
fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// The value of cookie `name`, from every `Cookie` header.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

impl Console {
    fn refused(&self, why: render::Refusal) -> Response {
        let file = self
            .credential
            .token_file
            .as_ref()
            .map(|p| p.display().to_string());
        let mut r = html(
            StatusCode::UNAUTHORIZED,
            render::refused(why, file.as_deref()),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"liandong\""),
        );
        r
    }
}

async fn index(State(c): State<Arc<Console>>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(token) = query_param(uri.query(), "token") {
        if !c.credential.token.matches(token) {
            return c.refused(render::Refusal::Wrong);
        }
        // Keep the token out of the address bar, the history and any later Referer.
        let cookie = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            c.cookie,
            c.credential.token.secret()
        );
        let mut r = html(StatusCode::SEE_OTHER, String::new());
        let h = r.headers_mut();
        h.insert(header::LOCATION, HeaderValue::from_static("/"));
        match HeaderValue::from_str(&cookie) {
            Ok(v) => {
                h.insert(header::SET_COOKIE, v);
            }
            // A parsed token is header-safe; should that ever fail, say so instead of looping.
            Err(_) => return c.refused(render::Refusal::Wrong),
        }
        return r;
    }
    match cookie(&headers, &c.cookie) {
        Some(t) if c.credential.token.matches(t) => {}
        _ => return c.refused(render::Refusal::Missing),
    }
    let node = c.node.clone();
    match tokio::task::spawn_blocking(move || gather(&node)).await {
        Ok(Ok(page)) => html(StatusCode::OK, render::page(&page)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "console: reading the node failed");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                render::failure(&e.to_string()),
            )
        }
        Err(e) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            render::failure(&format!("the reader task failed: {e}")),
        ),
    }
}

/// Reads everything the page shows.
pub fn gather(node: &Node) -> crate::Result<render::Page> {
    Ok(render::Page {
        status: node.status()?,
        topics: node.topic_list()?,
        tasks: node.tasks()?,
        committees: node.committee_list(),
        guidance: node.guidance_list()?,
        reports: node.report_list()?,
        quarantine: node.quarantine_view()?,
        today: node.today(),
        now_ms: node.now_ms(),
    })
}

async fn fallback(req: Request<axum::body::Body>) -> Response {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        let (parts, ()) = tonic::Status::unimplemented(format!(
            "no such method on this node's local API: {}",
            req.uri().path()
        ))
        .into_http::<()>()
        .into_parts();
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    html(StatusCode::NOT_FOUND, render::not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_cookie_parsing() {
        assert_eq!(query_param(Some("a=1&token=abc"), "token"), Some("abc"));
        assert_eq!(query_param(Some("token"), "token"), Some(""));
        assert_eq!(query_param(Some("tokens=abc"), "token"), None);
        assert_eq!(query_param(None, "token"), None);
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; liandong_620000=xyz"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("liandong_620100=def"),
        );
        assert_eq!(cookie(&h, "liandong_620000"), Some("xyz"));
        assert_eq!(cookie(&h, "liandong_620100"), Some("def"));
        assert_eq!(cookie(&h, "liandong_620400"), None);
    }
}
