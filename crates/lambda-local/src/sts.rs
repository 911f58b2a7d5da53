//! STS `AssumeRole` (and `GetCallerIdentity`), enforcing the external id exactly as an IAM
//! trust policy with an `sts:ExternalId` condition would: a call without it, or with another
//! one, is denied.

use std::collections::HashMap;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::config::Config;

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Handles one STS query-protocol request (a form-encoded POST).
pub(crate) fn handle(config: &Config, form: &[u8]) -> Response {
    let params: HashMap<String, String> = match serde_urlencoded::from_bytes(form) {
        Ok(params) => params,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "MalformedQueryString",
                &e.to_string(),
            );
        }
    };
    match params.get("Action").map(String::as_str) {
        Some("AssumeRole") => assume_role(config, &params),
        Some("GetCallerIdentity") => xml(
            StatusCode::OK,
            format!(
                "<GetCallerIdentityResponse xmlns=\"{XMLNS}\"><GetCallerIdentityResult>\
                 <Arn>arn:aws:iam::{account}:user/local</Arn><UserId>AIDALOCAL</UserId>\
                 <Account>{account}</Account></GetCallerIdentityResult>{metadata}\
                 </GetCallerIdentityResponse>",
                account = config.account_id,
                metadata = metadata()
            ),
        ),
        Some(other) => error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            &format!(
                "the local environment emulates AssumeRole and GetCallerIdentity, not {other}"
            ),
        ),
        None => error(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "the request has no Action",
        ),
    }
}

fn assume_role(config: &Config, params: &HashMap<String, String>) -> Response {
    let role_arn = params
        .get("RoleArn")
        .map(String::as_str)
        .unwrap_or_default();
    let session = params
        .get("RoleSessionName")
        .map(String::as_str)
        .unwrap_or("session");
    let denied = |why: &str| {
        tracing::warn!(role_arn, why, "AssumeRole denied");
        error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &format!(
                "User: arn:aws:iam::{}:user/local is not authorized to perform: sts:AssumeRole on resource: {role_arn} ({why})",
                config.account_id
            ),
        )
    };
    if role_arn != config.role.arn {
        return denied("no such role in this environment");
    }
    match params.get("ExternalId") {
        None => return denied("the trust policy requires an external id and none was given"),
        Some(id) if *id != config.role.external_id => {
            return denied("the external id does not match the trust policy");
        }
        Some(_) => {}
    }
    let seconds: i64 = params
        .get("DurationSeconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3600);
    let expiration = chrono::Utc::now() + chrono::Duration::seconds(seconds);
    let role_name = role_arn.rsplit('/').next().unwrap_or("role");
    tracing::info!(role_arn, "AssumeRole allowed");
    xml(
        StatusCode::OK,
        format!(
            "<AssumeRoleResponse xmlns=\"{XMLNS}\"><AssumeRoleResult>\
             <Credentials><AccessKeyId>ASIALOCAL{key}</AccessKeyId>\
             <SecretAccessKey>local-secret-{key}</SecretAccessKey>\
             <SessionToken>local-session-{key}</SessionToken>\
             <Expiration>{expiration}</Expiration></Credentials>\
             <AssumedRoleUser><AssumedRoleId>AROALOCAL:{session}</AssumedRoleId>\
             <Arn>arn:aws:sts::{account}:assumed-role/{role_name}/{session}</Arn></AssumedRoleUser>\
             </AssumeRoleResult>{metadata}</AssumeRoleResponse>",
            key = &uuid::Uuid::new_v4().simple().to_string()[..12].to_uppercase(),
            expiration = expiration.format("%Y-%m-%dT%H:%M:%SZ"),
            account = config.account_id,
            metadata = metadata(),
        ),
    )
}

fn metadata() -> String {
    format!(
        "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>",
        uuid::Uuid::new_v4()
    )
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let message = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            uuid::Uuid::new_v4()
        ),
    )
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "text/xml")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RoleConfig;

    fn config() -> Config {
        Config::new(RoleConfig {
            arn: "arn:aws:iam::123456789012:role/temporal".to_owned(),
            external_id: "ext-1".to_owned(),
        })
    }

    async fn call(form: &str) -> (StatusCode, String) {
        let response = handle(&config(), form.as_bytes());
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    const ROLE: &str =
        "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Ftemporal&RoleSessionName=s";

    #[tokio::test]
    async fn the_right_external_id_gets_credentials() {
        let (status, body) = call(&format!(
            "Action=AssumeRole&Version=2011-06-15&{ROLE}&ExternalId=ext-1"
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.contains("<AccessKeyId>ASIALOCAL") && body.contains("<Expiration>"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_missing_or_wrong_external_id_is_denied() {
        for form in [
            format!("Action=AssumeRole&{ROLE}"),
            format!("Action=AssumeRole&{ROLE}&ExternalId=ext-2"),
        ] {
            let (status, body) = call(&form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
        }
    }

    #[tokio::test]
    async fn another_role_is_denied_and_other_actions_are_refused() {
        let (status, _) =
            call("Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&ExternalId=ext-1")
                .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = call("Action=GetSessionToken").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("InvalidAction"));
    }
}
