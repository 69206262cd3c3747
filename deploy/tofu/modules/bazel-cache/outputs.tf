# bazel-cache module - Outputs

output "service_name" {
  description = "Kubernetes Service name"
  value       = kubernetes_service.main.metadata[0].name
}

output "grpc_endpoint" {
  description = "gRPC endpoint for Bazel remote cache"
  value       = "grpc://${kubernetes_service.main.metadata[0].name}.${var.namespace}.svc.cluster.local:${local.grpc_port}"
}

output "http_endpoint" {
  description = "HTTP endpoint for status and metrics (and the HTTP cache protocol)"
  value       = "http://${kubernetes_service.main.metadata[0].name}.${var.namespace}.svc.cluster.local:${local.http_port}"
}

output "bazelrc_config" {
  description = "Configuration lines for .bazelrc"
  value       = <<-EOT
    # Bazel remote cache configuration
    build --remote_cache=grpc://${kubernetes_service.main.metadata[0].name}.${var.namespace}.svc.cluster.local:${local.grpc_port}
    build --remote_upload_local_results=true
    build --remote_download_minimal
  EOT
}

output "external_grpc_endpoint" {
  description = "External gRPC endpoint (if ingress enabled)"
  value       = var.enable_ingress ? "grpcs://${var.ingress_host}:443" : null
}
