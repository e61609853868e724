//! The standard `grpc.health.v1.Health` service, answering from the component's [`Prober`]:
//! SERVING while ready, NOT_SERVING otherwise (Thanos registers the same, and Kubernetes gRPC
//! probes call it). The empty service name and every registered service name are known.

use std::pin::Pin;

use futures::Stream;
use strata_proto::grpc::health::v1::health_check_response::ServingStatus;
use strata_proto::grpc::health::v1::health_server::{Health, HealthServer};
use strata_proto::grpc::health::v1::{HealthCheckRequest, HealthCheckResponse};
use tonic::{Request, Response, Status};

use crate::error::ErrorCode;
use crate::http_server::{ProbeState, Prober};

/// Health checks for the services of one component.
#[derive(Debug, Clone)]
pub struct HealthService {
    prober: Prober,
    services: Vec<String>,
}

impl HealthService {
    /// Health for `services` (fully-qualified names such as `thanos.Store`) and "" (the server).
    pub fn new(prober: Prober, services: &[&str]) -> Self {
        Self {
            prober,
            services: services.iter().map(|name| (*name).to_owned()).collect(),
        }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> HealthServer<Self> {
        HealthServer::new(self)
    }

    fn check_known(&self, service: &str) -> Result<(), Status> {
        if service.is_empty() || self.services.iter().any(|known| known == service) {
            Ok(())
        } else {
            Err(ErrorCode::NotFound.to_status(format!("unknown service {service:?}")))
        }
    }
}

fn serving_status(state: ProbeState) -> HealthCheckResponse {
    let status = if state.ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    HealthCheckResponse {
        status: status as i32,
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.check_known(&request.get_ref().service)?;
        Ok(Response::new(serving_status(self.prober.state())))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.check_known(&request.get_ref().service)?;
        let receiver = self.prober.subscribe();
        // Send the current status first, then one message per change of readiness.
        let stream = futures::stream::unfold((receiver, None), |(mut receiver, last)| async move {
            loop {
                let current = serving_status(*receiver.borrow_and_update());
                if last != Some(current.status) {
                    let status = current.status;
                    return Some((Ok(current), (receiver, Some(status))));
                }
                // The prober lives as long as the server; its end ends the stream.
                receiver.changed().await.ok()?;
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
