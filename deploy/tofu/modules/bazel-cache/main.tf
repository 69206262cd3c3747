# bazel-cache module
#
# Deploys bazel-cache (a drop-in replacement for bazel-remote) with an S3/MinIO backend: 2-4 replicas,
# each with a local disk LRU on an emptyDir, all sharing one bucket.
#
# Usage:
#   module "bazel_cache" {
#     source = "../../modules/bazel-cache"
#
#     name      = "bazel-cache"
#     namespace = "attic-cache"
#     image     = "registry.example.com/bazel-cache:0.1.0"
#
#     # MinIO backend (existing in namespace)
#     s3_endpoint = "minio.attic-cache.svc.cluster.local:9000"
#     s3_bucket   = "bazel-cache"
#     s3_secret   = "bazel-cache-s3-credentials" # keys: access-key, secret-key
#
#     # Scaling
#     min_replicas = 2
#     max_replicas = 4
#   }

terraform {
  required_version = ">= 1.6.0"
  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.24"
    }
  }
}

# =============================================================================
# Locals
# =============================================================================

locals {
  labels = merge(
    {
      "app.kubernetes.io/name"       = var.name
      "app.kubernetes.io/instance"   = "${var.name}-${var.namespace}"
      "app.kubernetes.io/component"  = "build-cache"
      "app.kubernetes.io/part-of"    = "build-infrastructure"
      "app.kubernetes.io/managed-by" = "opentofu"
    },
    var.additional_labels
  )

  selector_labels = {
    "app.kubernetes.io/name"     = var.name
    "app.kubernetes.io/instance" = "${var.name}-${var.namespace}"
  }

  grpc_port   = 9092
  http_port   = 8080
  config_dir  = "/etc/bazel-remote"
  config_path = "${local.config_dir}/config.yaml"

  # The one config file (config.yaml.tftpl), every value JSON-encoded (JSON scalars are YAML).
  # src/test/java/io/bazelcache/deploy/DeploymentConfigTest.java loads the same template.
  config_yaml = templatefile("${path.module}/config.yaml.tftpl", {
    dir                   = jsonencode("/data")
    max_size              = jsonencode(var.max_cache_size_gb)
    http_address          = jsonencode("0.0.0.0:${local.http_port}")
    grpc_address          = jsonencode("0.0.0.0:${local.grpc_port}")
    s3_endpoint           = jsonencode(var.s3_endpoint)
    s3_bucket             = jsonencode(var.s3_bucket)
    s3_prefix             = jsonencode(var.s3_prefix)
    s3_disable_ssl        = jsonencode(var.s3_disable_ssl)
    s3_bucket_lookup_type = jsonencode(var.s3_bucket_lookup_type)
    s3_max_idle_conns     = jsonencode(var.s3_max_idle_conns)
    s3_update_timestamps  = jsonencode(var.s3_update_timestamps)
    num_uploaders         = jsonencode(var.num_uploaders)
    max_queued_uploads    = jsonencode(var.max_queued_uploads)
    enable_metrics        = jsonencode(var.enable_metrics)
    access_log_level      = jsonencode(var.access_log_level)
    shutdown_delay        = jsonencode("${var.shutdown_delay_seconds}s")
  })
}

# =============================================================================
# ConfigMap for the bazel-cache configuration
# =============================================================================

resource "kubernetes_config_map" "config" {
  metadata {
    name      = "${var.name}-config"
    namespace = var.namespace
    labels    = local.labels
  }

  data = {
    "config.yaml" = local.config_yaml
  }
}

# =============================================================================
# Deployment
# =============================================================================

resource "kubernetes_deployment" "main" {
  wait_for_rollout = var.wait_for_rollout

  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
    annotations = {
      "app.kubernetes.io/created-by" = "opentofu"
    }
  }

  spec {
    replicas = var.min_replicas

    selector {
      match_labels = local.selector_labels
    }

    template {
      metadata {
        labels = local.labels
        annotations = {
          "prometheus.io/scrape" = tostring(var.enable_metrics)
          "prometheus.io/port"   = tostring(local.http_port)
          "prometheus.io/path"   = "/metrics"
          # Roll the pods when the configuration changes.
          "bazel-cache/config-sha256" = sha256(local.config_yaml)
        }
      }

      spec {
        service_account_name = var.service_account_name
        # A Service named bazel-remote (or any Service) would otherwise inject BAZEL_REMOTE_PORT=tcp://...
        # and friends, which bazel-cache reads as configuration.
        enable_service_links = false
        # shutdown_delay + in-flight requests (10 s) + S3 upload drain (30 s), with room to spare.
        termination_grace_period_seconds = var.termination_grace_period_seconds

        security_context {
          run_as_non_root = true
          run_as_user     = 1000
          run_as_group    = 1000
          fs_group        = 1000
        }

        container {
          name  = "bazel-cache"
          image = var.image
          args  = ["--config_file=${local.config_path}"]

          port {
            container_port = local.grpc_port
            name           = "grpc"
            protocol       = "TCP"
          }

          port {
            container_port = local.http_port
            name           = "http"
            protocol       = "TCP"
          }

          # S3 credentials from the secret
          env {
            name = "BAZEL_REMOTE_S3_ACCESS_KEY_ID"
            value_from {
              secret_key_ref {
                name = var.s3_secret
                key  = "access-key"
              }
            }
          }

          env {
            name = "BAZEL_REMOTE_S3_SECRET_ACCESS_KEY"
            value_from {
              secret_key_ref {
                name = var.s3_secret
                key  = "secret-key"
              }
            }
          }

          # The JVM sizes its heap from the container's memory limit.
          env {
            name  = "JAVA_TOOL_OPTIONS"
            value = var.java_options
          }

          volume_mount {
            name       = "config"
            mount_path = local.config_dir
            read_only  = true
          }

          volume_mount {
            name       = "cache"
            mount_path = "/data"
          }

          # The root filesystem is read-only; the JVM and Netty want a writable /tmp.
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }

          resources {
            requests = {
              cpu    = var.cpu_request
              memory = var.memory_request
            }
            limits = {
              cpu    = var.cpu_limit
              memory = var.memory_limit
            }
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
            }
          }

          # The listeners open only after the disk index is loaded: give a big cache time to load.
          startup_probe {
            http_get {
              path = "/status"
              port = local.http_port
            }
            period_seconds    = 5
            timeout_seconds   = 5
            failure_threshold = 120
          }

          # Liveness: gRPC health (grpc.health.v1, service "").
          liveness_probe {
            grpc {
              port = local.grpc_port
            }
            period_seconds    = 30
            timeout_seconds   = 5
            failure_threshold = 3
          }

          # Readiness: /status answers 200, and 503 from SIGTERM on (shutdown_delay).
          readiness_probe {
            http_get {
              path = "/status"
              port = local.http_port
            }
            period_seconds    = 2
            timeout_seconds   = 5
            failure_threshold = 1
          }
        }

        volume {
          name = "config"
          config_map {
            name = kubernetes_config_map.config.metadata[0].name
          }
        }

        volume {
          name = "cache"
          empty_dir {
            size_limit = "${var.local_cache_size_gb}Gi"
          }
        }

        volume {
          name = "tmp"
          empty_dir {
            size_limit = "256Mi"
          }
        }

        # Topology spread for HA
        topology_spread_constraint {
          max_skew           = 1
          topology_key       = "topology.kubernetes.io/zone"
          when_unsatisfiable = "ScheduleAnyway"
          label_selector {
            match_labels = local.selector_labels
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      spec[0].replicas, # Managed by HPA
    ]
    precondition {
      condition     = var.max_cache_size_gb < var.local_cache_size_gb
      error_message = "max_cache_size_gb (the disk LRU's max_size) must be below local_cache_size_gb (the emptyDir sizeLimit), or the kubelet evicts the pod when the cache fills up."
    }
  }
}

# =============================================================================
# Service
# =============================================================================

resource "kubernetes_service" "main" {
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }

  spec {
    selector = local.selector_labels

    port {
      port        = local.grpc_port
      target_port = local.grpc_port
      name        = "grpc"
      protocol    = "TCP"
    }

    port {
      port        = local.http_port
      target_port = local.http_port
      name        = "http"
      protocol    = "TCP"
    }

    type = "ClusterIP"
  }
}

# =============================================================================
# Ingress (optional, gRPC over TLS for external access)
# =============================================================================

resource "kubernetes_ingress_v1" "main" {
  count = var.enable_ingress ? 1 : 0

  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
    annotations = merge(
      {
        "cert-manager.io/cluster-issuer" = var.cert_manager_issuer
        # gRPC requires HTTP/2 to the backend
        "nginx.ingress.kubernetes.io/backend-protocol" = "GRPC"
        # Large blobs: no request body limit, long streams
        "nginx.ingress.kubernetes.io/proxy-body-size"    = "0"
        "nginx.ingress.kubernetes.io/proxy-read-timeout" = "600"
        "nginx.ingress.kubernetes.io/proxy-send-timeout" = "600"
      },
      var.ingress_annotations
    )
  }

  spec {
    ingress_class_name = var.ingress_class

    tls {
      hosts       = [var.ingress_host]
      secret_name = "${var.name}-tls"
    }

    rule {
      host = var.ingress_host
      http {
        path {
          path      = "/"
          path_type = "Prefix"
          backend {
            service {
              name = kubernetes_service.main.metadata[0].name
              port {
                number = local.grpc_port
              }
            }
          }
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.ingress_host != ""
      error_message = "enable_ingress needs ingress_host."
    }
  }
}
