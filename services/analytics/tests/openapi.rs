//! The OpenAPI document lists every route the service registers, each
//! with its parameters, in OpenAPI's own path syntax.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn the_document_lists_every_route_with_its_parameters() {
    let doc = fiscus_analytics::service::openapi();
    let json = serde_json::to_value(&doc).unwrap();
    let paths: Vec<&str> = json["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    println!("{paths:#?}");
    for p in [
        "/v1/analytics/status",
        "/v1/analytics/whoami",
        "/v1/analytics/regions/{code}",
        "/v1/analytics/regions/{code}/months",
        "/v1/analytics/regions/{code}/programs",
        "/v1/analytics/regions/{code}/deadlines",
        "/v1/analytics/regions/{code}/idle",
        "/v1/analytics/regions/{code}/anomalies",
        "/v1/analytics/regions/{code}/timing",
        "/v1/analytics/trace/{tx_id}",
        "/v1/analytics/regions/{code}/children.{format}",
        "/v1/analytics/regions/{code}/months.{format}",
        "/v1/analytics/regions/{code}/programs.{format}",
        "/v1/analytics/regions/{code}/deadlines.{format}",
        "/v1/analytics/regions/{code}/idle.{format}",
        "/v1/analytics/regions/{code}/anomalies.{format}",
    ] {
        assert!(paths.contains(&p), "{p} is not in {paths:?}");
    }
    assert_eq!(paths.len(), 16, "{paths:?}");
    // Every operation lists the problems it can answer with.
    for (path, item) in json["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            for status in ["401", "403", "429", "503"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{path} lacks {status}"
                );
            }
            if path.contains('{') {
                assert!(op["responses"].get("404").is_some(), "{path} lacks 404");
                assert!(op["responses"].get("400").is_some(), "{path} lacks 400");
            }
        }
    }
    assert!(json["components"]["schemas"]["ProblemDoc"].is_object());
    // Every templated segment is a declared path parameter.
    for (path, item) in json["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            for seg in path.split('{').skip(1) {
                let name = seg.split('}').next().unwrap();
                assert!(
                    declared.contains(&name),
                    "{path}: {name} is not declared ({declared:?})"
                );
            }
        }
    }
}
