//! Plain HTTP for external verifiers: the root certificate and the current CRL.

use crate::service::CaService;
use actix_web::{HttpResponse, web};
use fiscus_common::codes;
use fiscus_common::{ErrorKind, ServiceError};
use std::sync::Arc;

/// Both roots, PEM: what a TLS client of the consortium trusts.
async fn root_pem(svc: web::Data<Arc<CaService>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .body(svc.ca.trust_pem())
}

async fn crl_der(svc: web::Data<Arc<CaService>>) -> Result<HttpResponse, ServiceError> {
    let der = current_crl(&svc)
        .await?
        .der()
        .map_err(|e| ServiceError::from(&e))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pkix-crl")
        .body(der))
}

/// The same CRL, signed by the ECDSA P-256 TLS root.
async fn crl_ecdsa_der(svc: web::Data<Arc<CaService>>) -> Result<HttpResponse, ServiceError> {
    let der = current_crl(&svc)
        .await?
        .ecdsa_der()
        .map_err(|e| ServiceError::from(&e))?
        .ok_or_else(|| {
            ServiceError::new(
                ErrorKind::NotFound,
                codes::ca::NO_CRL,
                "this CA has no ECDSA TLS root CRL yet",
            )
        })?;
    Ok(HttpResponse::Ok()
        .content_type("application/pkix-crl")
        .body(der))
}

async fn current_crl(svc: &CaService) -> Result<crate::registry::CrlRecord, ServiceError> {
    svc.registry
        .current_crl()
        .await
        .map_err(|e| ServiceError::from(&e))?
        .ok_or_else(|| {
            ServiceError::new(
                ErrorKind::NotFound,
                codes::ca::NO_CRL,
                "no CRL has been issued",
            )
        })
}

/// `/ca.pem`, `/crl.der` and `/crl-ecdsa.der`.
pub(crate) fn routes(
    svc: Arc<CaService>,
) -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(svc.clone()))
            .route("/ca.pem", web::get().to(root_pem))
            .route("/crl.der", web::get().to(crl_der))
            .route("/crl-ecdsa.der", web::get().to(crl_ecdsa_der));
    }
}
