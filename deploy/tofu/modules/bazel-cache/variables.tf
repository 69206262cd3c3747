# bazel-cache module - Variables

# =============================================================================
# Required Variables
# =============================================================================

variable "name" {
  description = "Name of the Deployment, Service and friends. Not \"bazel-remote\": service links are off, but other tools may still inject BAZEL_REMOTE_* variables for a Service of that name."
  type        = string
  default     = "bazel-cache"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.name)) && var.name != "bazel-remote"
    error_message = "Name must be lowercase alphanumeric with optional hyphens, and not bazel-remote (a Service of that name makes Kubernetes inject BAZEL_REMOTE_PORT=tcp://..., which is a configuration variable)."
  }
}

variable "namespace" {
  description = "Kubernetes namespace for deployment"
  type        = string
}

# =============================================================================
# S3/MinIO Configuration
# =============================================================================

variable "s3_endpoint" {
  description = "S3/MinIO endpoint, host:port without scheme (e.g., minio.attic-cache.svc.cluster.local:9000)"
  type        = string
}

variable "s3_bucket" {
  description = "S3/MinIO bucket name for cache storage"
  type        = string
  default     = "bazel-cache"
}

variable "s3_secret" {
  description = "Kubernetes secret name containing access-key and secret-key"
  type        = string
}

variable "s3_prefix" {
  description = "Object prefix within the bucket"
  type        = string
  default     = ""
}

variable "s3_disable_ssl" {
  description = "Disable SSL for S3/MinIO (true for internal MinIO)"
  type        = bool
  default     = true
}

variable "s3_bucket_lookup_type" {
  description = "S3 bucket lookup type: auto, dns, or path"
  type        = string
  default     = "path"

  validation {
    condition     = contains(["auto", "dns", "path"], var.s3_bucket_lookup_type)
    error_message = "s3_bucket_lookup_type must be auto, dns, or path"
  }
}

variable "s3_max_idle_conns" {
  description = "Maximum idle connections to S3"
  type        = number
  default     = 1024
}

variable "s3_update_timestamps" {
  description = "Update object timestamps on cache hit (lets a bucket lifecycle rule expire unused objects)"
  type        = bool
  default     = true
}

# =============================================================================
# Cache Configuration
# =============================================================================

variable "max_cache_size_gb" {
  description = "max_size: GiB of each replica's local disk LRU. The bucket itself is not size-limited by bazel-cache (use a bucket lifecycle rule). Must be below local_cache_size_gb."
  type        = number
  default     = 8

  validation {
    condition     = var.max_cache_size_gb >= 1 && floor(var.max_cache_size_gb) == var.max_cache_size_gb
    error_message = "max_cache_size_gb must be a whole number of GiB, at least 1"
  }
}

variable "local_cache_size_gb" {
  description = "sizeLimit in GiB of the emptyDir at /data (the local disk cache plus scratch space)"
  type        = number
  default     = 10
}

variable "num_uploaders" {
  description = "Number of parallel S3 upload workers"
  type        = number
  default     = 100
}

variable "max_queued_uploads" {
  description = "Maximum queued uploads; beyond it uploads are dropped (counted in bazel_remote_s3_uploads_dropped_total)"
  type        = number
  default     = 1000000
}

variable "shutdown_delay_seconds" {
  description = "On SIGTERM, seconds during which /status answers 503 (and gRPC health NOT_SERVING) before the listeners close, so the Service stops routing to the pod first"
  type        = number
  default     = 5
}

variable "termination_grace_period_seconds" {
  description = "Pod termination grace: shutdown_delay_seconds + 10 s for requests in flight + 30 s for the S3 upload drain, plus margin"
  type        = number
  default     = 60
}

# =============================================================================
# Container Configuration
# =============================================================================

variable "image" {
  description = "bazel-cache container image (deploy/image/build-image.sh builds it)"
  type        = string
  default     = "bazel-cache:latest"
}

variable "java_options" {
  description = "JAVA_TOOL_OPTIONS for the JVM"
  type        = string
  default     = "-XX:MaxRAMPercentage=60 -XX:+ExitOnOutOfMemoryError"
}

variable "cpu_request" {
  description = "CPU request per replica"
  type        = string
  default     = "250m"
}

variable "cpu_limit" {
  description = "CPU limit per replica"
  type        = string
  default     = "1000m"
}

variable "memory_request" {
  description = "Memory request per replica"
  type        = string
  default     = "512Mi"
}

variable "memory_limit" {
  description = "Memory limit per replica"
  type        = string
  default     = "2Gi"
}

variable "service_account_name" {
  description = "Kubernetes service account name"
  type        = string
  default     = "default"
}

variable "wait_for_rollout" {
  description = "Wait for deployment rollout to complete"
  type        = bool
  default     = true
}

# =============================================================================
# Scaling Configuration
# =============================================================================

variable "min_replicas" {
  description = "Minimum number of replicas"
  type        = number
  default     = 2

  validation {
    condition     = var.min_replicas >= 1
    error_message = "min_replicas must be at least 1"
  }
}

variable "max_replicas" {
  description = "Maximum number of replicas for HPA"
  type        = number
  default     = 4

  validation {
    condition     = var.max_replicas >= 1
    error_message = "max_replicas must be at least 1"
  }
}

variable "cpu_target_percent" {
  description = "Target CPU utilization for HPA"
  type        = number
  default     = 70
}

variable "memory_target_percent" {
  description = "Target memory utilization for HPA"
  type        = number
  default     = 80
}

# =============================================================================
# Ingress Configuration
# =============================================================================

variable "enable_ingress" {
  description = "Create Ingress for external access (gRPC over TLS)"
  type        = bool
  default     = false
}

variable "ingress_host" {
  description = "Hostname for Ingress"
  type        = string
  default     = ""
}

variable "ingress_class" {
  description = "Ingress class (nginx, traefik)"
  type        = string
  default     = "nginx"
}

variable "cert_manager_issuer" {
  description = "cert-manager ClusterIssuer name"
  type        = string
  default     = "letsencrypt-prod"
}

variable "ingress_annotations" {
  description = "Additional Ingress annotations"
  type        = map(string)
  default     = {}
}

# =============================================================================
# Network Policy
# =============================================================================

variable "enable_network_policy" {
  description = "Create a NetworkPolicy that admits only cache clients, the ingress controller and Prometheus"
  type        = bool
  default     = true
}

variable "client_namespaces" {
  description = "Namespaces whose pods may use the cache (gRPC 9092, HTTP 8080); empty: every namespace"
  type        = list(string)
  default     = []
}

variable "ingress_controller_namespace" {
  description = "Namespace of the ingress controller (admitted on 9092 when enable_ingress)"
  type        = string
  default     = "ingress-nginx"
}

variable "prometheus_namespace" {
  description = "Namespace of Prometheus (admitted on 8080 for /metrics); empty: every namespace"
  type        = string
  default     = ""
}

# =============================================================================
# Monitoring Configuration
# =============================================================================

variable "enable_metrics" {
  description = "Enable Prometheus metrics endpoint"
  type        = bool
  default     = true
}

variable "access_log_level" {
  description = "Access log level: none or all"
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "all"], var.access_log_level)
    error_message = "access_log_level must be none or all"
  }
}

variable "create_service_monitor" {
  description = "Create ServiceMonitor and PrometheusRule for Prometheus Operator (its CRDs must exist at plan time)"
  type        = bool
  default     = true
}

variable "prometheus_release_label" {
  description = "Label value for Prometheus selector"
  type        = string
  default     = "prometheus"
}

# =============================================================================
# Labels
# =============================================================================

variable "additional_labels" {
  description = "Additional labels for all resources"
  type        = map(string)
  default     = {}
}
