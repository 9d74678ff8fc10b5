//! The HTTP surface: routes, extractors, handlers. Handlers only translate between HTTP
//! and the state's methods.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::{Device, Operator, Role};
use crate::campaign::NewCampaign;
use crate::device::{CheckIn, Enrol, NewGroup};
use crate::error::{ApiError, ApiResult};
use crate::{MAX_BODY, State};

/// The OpenAPI description, served as is.
const OPENAPI: &str = include_str!("openapi.json");

/// Media type of a SUIT envelope (draft-ietf-suit-manifest §13).
const SUIT_ENVELOPE: &str = "application/suit-envelope+cbor";

/// Every route, as the OpenAPI document must list it (checked by a test).
#[cfg(test)]
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/api/openapi.json"),
    ("get", "/dashboard"),
    ("get", "/dashboard.js"),
    ("get", "/api/v1/dashboard"),
    ("get", "/api/v1/trust-store"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("post", "/api/v1/devices/{id}/revoke"),
    ("get", "/api/v1/releases"),
    ("post", "/api/v1/releases"),
    ("get", "/api/v1/releases/{id}"),
    ("post", "/api/v1/releases/{id}/approve"),
    ("put", "/api/v1/payloads/{sha256}"),
    ("get", "/api/v1/devices"),
    ("get", "/api/v1/devices/{id}"),
    ("get", "/api/v1/groups"),
    ("post", "/api/v1/groups"),
    ("get", "/api/v1/groups/{id}"),
    ("get", "/api/v1/campaigns"),
    ("post", "/api/v1/campaigns"),
    ("get", "/api/v1/campaigns/{id}"),
    ("post", "/api/v1/campaigns/{id}/{action}"),
    ("post", "/device/v1/enrol/challenge"),
    ("post", "/device/v1/enrol"),
    ("get", "/device/v1/self"),
    ("post", "/device/v1/checkin"),
    ("get", "/device/v1/payloads/{sha256}"),
    ("post", "/device/v1/reports"),
];

/// The router over `state`.
pub fn app(state: State) -> Router {
    let upload = DefaultBodyLimit::max(state.inner.max_upload);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(openapi))
        .route("/dashboard", get(crate::dashboard::page))
        .route("/dashboard.js", get(crate::dashboard::script))
        .route("/api/v1/dashboard", get(dashboard))
        .route("/api/v1/trust-store", get(trust_store))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/devices/{id}/revoke", post(revoke_device))
        .route(
            "/api/v1/releases",
            get(list_releases).post(create_release).layer(upload),
        )
        .route("/api/v1/releases/{id}", get(get_release))
        .route("/api/v1/releases/{id}/approve", post(approve_release))
        .route("/api/v1/payloads/{sha256}", put(put_payload).layer(upload))
        .route("/api/v1/devices", get(list_devices))
        .route("/api/v1/devices/{id}", get(get_device))
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route("/api/v1/groups/{id}", get(get_group))
        .route(
            "/api/v1/campaigns",
            get(list_campaigns).post(create_campaign),
        )
        .route("/api/v1/campaigns/{id}", get(get_campaign))
        .route("/api/v1/campaigns/{id}/{action}", post(campaign_action))
        .route("/device/v1/enrol/challenge", post(challenge))
        .route("/device/v1/enrol", post(enrol))
        .route("/device/v1/self", get(device_self))
        .route("/device/v1/checkin", post(check_in))
        .route("/device/v1/payloads/{sha256}", get(download))
        .route("/device/v1/reports", post(report))
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Requests at INFO: the default filter shows who did what, with status and latency.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

/// JSON body whose rejections are [`ApiError`]s (one-line JSON), not axum's text.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<State> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &State) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
            Err(e) => Err(ApiError::bad(e.body_text())),
        }
    }
}

/// A raw body whose rejection (too large) is an [`ApiError`]-shaped 413.
pub(crate) struct RawBody(pub(crate) Bytes);

impl FromRequest<State> for RawBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &State) -> Result<Self, Response> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(e) => {
                Err((e.status(), axum::Json(json!({ "error": e.body_text() }))).into_response())
            }
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseQuery {
    name: String,
    vendor_id: String,
    class_id: String,
}

async fn create_release(
    state: axum::extract::State<State>,
    op: Operator,
    Query(q): Query<ReleaseQuery>,
    RawBody(body): RawBody,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    op.require(Role::Author, "upload releases")?;
    let release = state
        .create_release(&q.name, &q.vendor_id, &q.class_id, &body, &op.name)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(release)))
}

async fn list_releases(
    state: axum::extract::State<State>,
    _op: Operator,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(state.releases().await?))
}

async fn get_release(
    state: axum::extract::State<State>,
    _op: Operator,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(state.release(&id).await?))
}

async fn approve_release(
    state: axum::extract::State<State>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    op.require(Role::Operator, "approve releases")?;
    Ok(axum::Json(state.approve_release(&id, &op.name).await?))
}

async fn put_payload(
    state: axum::extract::State<State>,
    op: Operator,
    Path(sha): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    op.require(Role::Author, "upload payloads")?;
    if !crate::blob::is_digest(&sha) {
        return Err(ApiError::bad(
            "a payload is named by its SHA-256 in lower-case hex",
        ));
    }
    if crate::sha256_hex(&body) != sha {
        return Err(ApiError::rejected(
            "the body's SHA-256 is not the one in the URL",
        ));
    }
    let existed = state.inner.blobs.exists(&sha).await?;
    state.inner.blobs.put(&body).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        axum::Json(json!({ "sha256": sha, "size": body.len() })),
    ))
}

async fn dashboard(
    state: axum::extract::State<State>,
    _op: Operator,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(state.dashboard().await?))
}

async fn trust_store(
    state: axum::extract::State<State>,
    _op: Operator,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(state.trust_store_json()?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: String,
}

async fn list_tokens(
    state: axum::extract::State<State>,
    op: Operator,
) -> ApiResult<axum::Json<Value>> {
    op.require(Role::Operator, "list tokens")?;
    Ok(axum::Json(state.tokens().await?))
}

async fn create_token(
    state: axum::extract::State<State>,
    op: Operator,
    ApiJson(t): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    op.require(Role::Operator, "create tokens")?;
    let role =
        Role::parse(&t.role).ok_or_else(|| ApiError::bad("role: author, operator or viewer"))?;
    if t.name.trim().is_empty() || t.name.len() > 200 {
        return Err(ApiError::bad("name: 1 to 200 characters"));
    }
    let token = state.create_token(role, &t.name).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "name": t.name, "role": role.name(), "token": token })),
    ))
}

async fn revoke_token(
    state: axum::extract::State<State>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    op.require(Role::Operator, "revoke tokens")?;
    state.revoke_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_device(
    state: axum::extract::State<State>,
    op: Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    op.require(Role::Operator, "revoke devices")?;
    state.revoke_device(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_devices(
    state: axum::extract::State<State>,
    _op: Operator,
) -> ApiResult<axum::Json<Value>> {
    let devices = state.devices().await?;
    Ok(axum::Json(Value::Array(
        devices.iter().map(|d| d.json()).collect(),
    )))
}

async fn get_device(
    state: axum::extract::State<State>,
    _op: Operator,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(state.device(&id).await?.json()))
}

async fn list_groups(
    state: axum::extract::State<State>,
    _op: Operator,
) -> ApiResult<axum::Json<Value>> {
    let mut out = Vec::new();
    for id in state.group_ids().await? {
        out.push(state.group(&id).await?);
    }
    Ok(axum::Json(Value::Array(out)))
}

async fn create_group(
    state: axum::extract::State<State>,
    op: Operator,
    ApiJson(g): ApiJson<NewGroup>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    op.require(Role::Operator, "create groups")?;
    let id = state.create_group(g).await?;
    Ok((StatusCode::CREATED, axum::Json(state.group(&id).await?)))
}

async fn get_group(
    state: axum::extract::State<State>,
    _op: Operator,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(state.group(&id).await?))
}

async fn campaign_json(state: &State, c: &crate::campaign::Campaign) -> ApiResult<Value> {
    let counts = state.counts(&c.id).await?;
    let mut v = serde_json::to_value(c).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("phases".into(), json!(c.phase_list()));
        o.insert("devices_in_phase".into(), json!(c.cut(counts.total)));
        o.insert("counts".into(), json!(counts));
    }
    Ok(v)
}

async fn list_campaigns(
    state: axum::extract::State<State>,
    _op: Operator,
) -> ApiResult<axum::Json<Value>> {
    let mut out = Vec::new();
    for c in state.campaigns().await? {
        out.push(campaign_json(&state, &c).await?);
    }
    Ok(axum::Json(Value::Array(out)))
}

async fn create_campaign(
    state: axum::extract::State<State>,
    op: Operator,
    ApiJson(c): ApiJson<NewCampaign>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    op.require(Role::Operator, "create campaigns")?;
    let c = state.create_campaign(c, &op.name).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(campaign_json(&state, &c).await?),
    ))
}

async fn get_campaign(
    state: axum::extract::State<State>,
    _op: Operator,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let c = state.campaign(&id).await?;
    Ok(axum::Json(campaign_json(&state, &c).await?))
}

async fn campaign_action(
    state: axum::extract::State<State>,
    op: Operator,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    op.require(Role::Operator, "pause, resume or cancel campaigns")?;
    let c = state.campaign_action(&id, &action).await?;
    Ok(axum::Json(campaign_json(&state, &c).await?))
}

async fn challenge(state: axum::extract::State<State>) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(json!({ "nonce": state.challenge().await? })))
}

async fn enrol(
    state: axum::extract::State<State>,
    ApiJson(e): ApiJson<Enrol>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let id = e.id.clone();
    let token = state.enrol(e).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "token": token })),
    ))
}

async fn device_self(
    state: axum::extract::State<State>,
    dev: Device,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(state.device(&dev.id).await?.json()))
}

async fn check_in(
    state: axum::extract::State<State>,
    dev: Device,
    ApiJson(c): ApiJson<CheckIn>,
) -> ApiResult<Response> {
    match state.check_in(&dev.id, c).await? {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(offer) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(SUIT_ENVELOPE),
            );
            for (name, value) in [
                ("suit-campaign", &offer.campaign_id),
                ("suit-release", &offer.release_id),
                ("suit-report-nonce", &offer.nonce),
                ("suit-payloads", &offer.payloads),
            ] {
                headers.insert(
                    name,
                    HeaderValue::from_str(value).map_err(|e| ApiError::Internal(e.to_string()))?,
                );
            }
            Ok((StatusCode::OK, headers, offer.envelope).into_response())
        }
    }
}

async fn download(
    state: axum::extract::State<State>,
    _dev: Device,
    Path(sha): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state
        .inner
        .blobs
        .serve(&sha, "application/octet-stream", &headers)
        .await
}

async fn report(
    state: axum::extract::State<State>,
    dev: Device,
    RawBody(body): RawBody,
) -> ApiResult<axum::Json<Value>> {
    let success = state.report(&dev.id, &body).await?;
    Ok(axum::Json(json!({ "recorded": true, "success": success })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_lists_exactly_the_routes() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|m| *m != "parameters")
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
