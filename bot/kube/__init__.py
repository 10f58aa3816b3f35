"""The Kubernetes adapter: Strimzi resources and broker pods through the ``kubernetes`` client."""

from bot.kube.errors import KubeError, KubeNotFound, KubeUnavailable
from bot.kube.gateway import KubeClusterGateway, load_api_client

__all__ = ["KubeClusterGateway", "KubeError", "KubeNotFound", "KubeUnavailable", "load_api_client"]
