# bazel-cache module - NetworkPolicy (ingress only: the S3 endpoint may be anywhere)

resource "kubernetes_network_policy_v1" "main" {
  count = var.enable_network_policy ? 1 : 0

  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.labels
  }

  spec {
    pod_selector {
      match_labels = local.selector_labels
    }
    policy_types = ["Ingress"]

    # Cache clients: gRPC and HTTP, from the listed namespaces (or from every namespace).
    ingress {
      dynamic "from" {
        for_each = length(var.client_namespaces) > 0 ? var.client_namespaces : [""]
        content {
          namespace_selector {
            match_labels = from.value == "" ? {} : { "kubernetes.io/metadata.name" = from.value }
          }
        }
      }
      ports {
        port     = tostring(local.grpc_port)
        protocol = "TCP"
      }
      ports {
        port     = tostring(local.http_port)
        protocol = "TCP"
      }
    }

    # The ingress controller, for external gRPC.
    dynamic "ingress" {
      for_each = var.enable_ingress ? [var.ingress_controller_namespace] : []
      content {
        from {
          namespace_selector {
            match_labels = { "kubernetes.io/metadata.name" = ingress.value }
          }
        }
        ports {
          port     = tostring(local.grpc_port)
          protocol = "TCP"
        }
      }
    }

    # Prometheus scraping /metrics.
    dynamic "ingress" {
      for_each = var.enable_metrics ? [var.prometheus_namespace] : []
      content {
        from {
          namespace_selector {
            match_labels = ingress.value == "" ? {} : { "kubernetes.io/metadata.name" = ingress.value }
          }
        }
        ports {
          port     = tostring(local.http_port)
          protocol = "TCP"
        }
      }
    }
  }
}
