//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`
//! and `opentelemetry.proto.collector.logs.v1.LogsService/Export`,
//! optionally gzip-compressed. [`Receiver`] is both tonic services itself,
//! so it can also be mounted into another tonic server.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;

use crate::receiver::{MAX_REQUEST_BYTES, Receiver};
use crate::span::Transport;

/// The trace service [`crate::server`] serves: gzip accepted, requests
/// bounded by [`MAX_REQUEST_BYTES`] once decompressed.
pub(crate) fn service(receiver: Receiver) -> TraceServiceServer<Receiver> {
    TraceServiceServer::new(receiver)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_REQUEST_BYTES)
}

/// The logs service [`crate::server`] serves beside it, bounded alike.
pub(crate) fn logs_service(receiver: Receiver) -> LogsServiceServer<Receiver> {
    LogsServiceServer::new(receiver)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_REQUEST_BYTES)
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.ingest(request.into_inner(), Transport::Grpc);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.ingest_logs(request.into_inner(), Transport::Grpc);
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

    use super::*;
    use crate::samples::{
        assert_sample_captured, assert_sample_logs_captured, sample_logs_request, sample_request,
        start,
    };

    #[tokio::test]
    async fn grpc_export_is_captured() {
        let running = start(Receiver::new()).await;
        assert_ne!(running.grpc_addr.port(), 0, "the real port is read back");

        let mut client = TraceServiceClient::connect(running.grpc_endpoint())
            .await
            .expect("gRPC connects");
        let response = client
            .export(sample_request())
            .await
            .expect("export succeeds");
        assert_eq!(response.into_inner().partial_success, None);

        assert_sample_captured(&running.spans(), Transport::Grpc);
        running.shutdown().await.expect("clean shutdown");
    }

    #[tokio::test]
    async fn grpc_accepts_gzip() {
        let running = start(Receiver::new()).await;
        let mut client = TraceServiceClient::connect(running.grpc_endpoint())
            .await
            .expect("gRPC connects")
            .send_compressed(CompressionEncoding::Gzip);
        client
            .export(sample_request())
            .await
            .expect("export succeeds");
        assert_sample_captured(&running.spans(), Transport::Grpc);
    }

    #[tokio::test]
    async fn grpc_logs_export_is_captured_beside_spans() {
        let running = start(Receiver::new()).await;
        let mut logs = LogsServiceClient::connect(running.grpc_endpoint())
            .await
            .expect("gRPC connects")
            .send_compressed(CompressionEncoding::Gzip);
        let response = logs
            .export(sample_logs_request())
            .await
            .expect("export succeeds");
        assert_eq!(response.into_inner().partial_success, None);
        let mut traces = TraceServiceClient::connect(running.grpc_endpoint())
            .await
            .expect("gRPC connects");
        traces
            .export(sample_request())
            .await
            .expect("export succeeds");

        assert_sample_logs_captured(&running.logs(), Transport::Grpc);
        assert_sample_captured(&running.spans(), Transport::Grpc);
        running.shutdown().await.expect("clean shutdown");
    }
}
