//! The OpenAPI document: built from the same route list the server serves
//! (`crate::api::routes`), with the problem responses every route can give
//! added in one place.

use actix_web::App;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fiscus exchange-adapter",
        description = "财政转移支付区块链 数据交换接口 / The Fiscus data exchange API for budget and treasury systems. Amounts are integer fen. Errors are RFC 9457 problem+json with a stable `code`.",
        version = "1"
    ),
    modifiers(&ApiKeyScheme),
    tags(
        (name = "submit", description = "Submit transactions"),
        (name = "query", description = "Read the ledger"),
        (name = "import", description = "Bulk import of allocations and disbursements (docs/bulk-import.md)"),
        (name = "export", description = "CSV and JSON exports"),
        (name = "subscribe", description = "Server-sent events and webhook dead letters"),
        (name = "governance", description = "Membership and configuration changes by proposal and member vote (scope `govern`)"),
    )
)]
struct ApiDoc;

struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key: `Authorization: Bearer fsk_…` (or `X-Api-Key`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of the routes [`crate::api::routes`] registers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::api::routes)
        .split_for_parts();
    add_common_responses(&mut doc);
    doc
}

/// The pattern of an identifier parameter, as the contract's rules check it
/// (`fiscus_contract_executor::rules`): org codes are 6 digits, program ids
/// 1 to 64 of `[A-Za-z0-9._-]`, tx ids 64 hex digits.
fn id_pattern(name: &str) -> Option<&'static str> {
    match name {
        "org" => Some("^[0-9]{6}$"),
        "program" => Some("^[A-Za-z0-9._-]{1,64}$"),
        "tx_id" => Some("^[0-9a-fA-F]{64}$"),
        _ => None,
    }
}

/// The problem responses every route can give, added in one place rather
/// than repeated on each handler: 401 (no or a bad key), 403 (scope, org,
/// disclosure), 429 (rate, with `Retry-After`) and 503 (the ledger-store or
/// the orderers unreachable, or a wait that ran out); 400 where the route
/// takes a path, query or body; 404 where it names something by path; 413
/// where it takes a body. A handler's own description for a status wins.
/// Analytics adds the same to its document (its routes give the same
/// problems, `ProblemDoc` among its schemas).
pub fn add_common_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Schema};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ProblemDoc")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            for param in op.parameters.iter_mut().flatten() {
                if let (Some(pattern), Some(RefOr::T(Schema::Object(schema)))) =
                    (id_pattern(&param.name), param.schema.as_mut())
                {
                    schema.pattern = Some(pattern.to_owned());
                }
            }
            let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let has_body = op.request_body.is_some();
            let mut add = |status: &str, description: &str| {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem(description).into());
            };
            add(
                "401",
                "Missing or unknown API key, or a revoked client certificate (`api.missing_api_key`, `api.invalid_api_key`, `api.certificate_revoked`)",
            );
            add(
                "403",
                "The key lacks the scope, or the org or the data is not the caller's",
            );
            add(
                "429",
                "Over the client's rate (`api.rate_limited`); see `Retry-After`",
            );
            add(
                "503",
                "The ledger-store or every orderer is unreachable, or a wait ran out",
            );
            if has_params || has_body {
                add(
                    "400",
                    "A bad path, query or body (`api.bad_path`, `api.bad_query`, …)",
                );
            }
            if path.contains('{') {
                add("404", "Nothing there (`api.not_found`)");
            }
            if has_body {
                add("413", "The body is over the limit (`api.body_too_large`)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_lists_the_problem_statuses_it_can_return() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 17, "{}", paths.len());
        let mut patterned = 0;
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let mut need = vec!["401", "403", "429", "503"];
                if op
                    .get("parameters")
                    .is_some_and(|p| !p.as_array().unwrap().is_empty())
                    || op.get("requestBody").is_some()
                {
                    need.push("400");
                }
                if path.contains('{') {
                    need.push("404");
                }
                if path.starts_with("/v1/exports/") {
                    let content = &op["responses"]["200"]["content"];
                    assert!(
                        content.get("text/csv").is_some()
                            && content.get("application/json").is_some(),
                        "{path}: {content}"
                    );
                }
                for param in op["parameters"].as_array().into_iter().flatten() {
                    if let Some(p) = super::id_pattern(param["name"].as_str().unwrap()) {
                        assert_eq!(param["schema"]["pattern"], p, "{method} {path}: {param}");
                        patterned += 1;
                    }
                }
                for status in need {
                    let r = responses
                        .get(status)
                        .unwrap_or_else(|| panic!("{method} {path} does not list {status}"));
                    assert!(
                        r["content"]["application/problem+json"]["schema"]["$ref"]
                            .as_str()
                            .is_some_and(|s| s.ends_with("/ProblemDoc")),
                        "{method} {path} {status}: {r}"
                    );
                }
            }
        }
        // org and program in two account routes and the list filter, tx_id in two.
        assert!(
            patterned >= 7,
            "{patterned} identifier parameters carry a pattern"
        );
    }
}
