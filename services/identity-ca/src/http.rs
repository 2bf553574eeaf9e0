//! Plain HTTP for external verifiers: the root certificate and the current CRL.

use crate::service::CaService;
use actix_web::{HttpResponse, web};
use fiscus_common::codes;
use fiscus_common::{ErrorKind, ServiceError};
use std::sync::Arc;

async fn root_pem(svc: web::Data<Arc<CaService>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .body(svc.ca.root_pem.clone())
}

async fn crl_der(svc: web::Data<Arc<CaService>>) -> Result<HttpResponse, ServiceError> {
    let crl = svc
        .registry
        .current_crl()
        .await
        .map_err(|e| ServiceError::from(&e))?
        .ok_or_else(|| {
            ServiceError::new(
                ErrorKind::NotFound,
                codes::ca::NO_CRL,
                "no CRL has been issued",
            )
        })?;
    let der = hex::decode(&crl.der_hex)
        .map_err(|e| ServiceError::new(ErrorKind::Internal, codes::ca::INTERNAL, e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pkix-crl")
        .body(der))
}

/// `/ca.pem` and `/crl.der`.
pub(crate) fn routes(
    svc: Arc<CaService>,
) -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(svc.clone()))
            .route("/ca.pem", web::get().to(root_pem))
            .route("/crl.der", web::get().to(crl_der));
    }
}
