//! One error type for every handler, mapped to a status code and a one-line JSON body
//! (`{"error": "…"}`). Client faults say why; internal faults say only "internal error"
//! and are logged, so a database or file-system message never reaches a caller.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No credentials, or credentials the server does not know (401).
    #[error("missing or unknown bearer token")]
    Unauthenticated,
    /// The caller's role may not do this (403).
    #[error("role {have} may not {action}")]
    Forbidden {
        /// The caller's role.
        have: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// The named thing does not exist, or is not the caller's to see (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is malformed (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request is well-formed but refused, e.g. an envelope a device would refuse (422).
    #[error("{0}")]
    Rejected(String),
    /// The body is larger than this route takes (413).
    #[error("request body too large")]
    TooLarge,
    /// The request conflicts with the current state (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The Range header cannot be satisfied; carries the representation's length (416).
    #[error("range not satisfiable")]
    RangeNotSatisfiable(u64),
    /// A database failure (500, logged).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A file-system failure (500, logged).
    #[error("storage: {0}")]
    Storage(#[from] std::io::Error),
    /// Any other server fault (500, logged).
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Database(_) | ApiError::Storage(_) | ApiError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The one line a caller is shown: client faults say why; a server fault is logged
    /// here and shown as "internal error" (HTTP bodies and CoAP diagnostic payloads).
    pub fn public_message(&self) -> String {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "request failed");
            "internal error".to_string()
        } else {
            self.to_string()
        }
    }

    /// Shorthand for [`ApiError::BadRequest`].
    pub fn bad(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }

    /// Shorthand for [`ApiError::Rejected`].
    pub fn rejected(msg: impl Into<String>) -> Self {
        ApiError::Rejected(msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.public_message();
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if let ApiError::Unauthenticated = self {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let ApiError::RangeNotSatisfiable(len) = self
            && let Ok(v) = axum::http::HeaderValue::from_str(&format!("bytes */{len}"))
        {
            response
                .headers_mut()
                .insert(axum::http::header::CONTENT_RANGE, v);
        }
        response
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
